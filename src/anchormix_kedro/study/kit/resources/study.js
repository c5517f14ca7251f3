// The study page's shared behaviour, for the offline page and the study server's page:
// the players (one at a time, position carried over, A/B), the ratings' state, progress
// and "next unrated". window.AnchorMixStudy(options) returns the form's functions.
window.AnchorMixStudy = function (options) {
  "use strict";
  var config = options.config;
  var clipSource = options.clipSource;
  var allRatedMessage = options.allRatedMessage;
  var criteria = config.criteria;
  var sections = Array.prototype.slice.call(document.querySelectorAll("section.scenario"));
  var status = document.getElementById("status");

  function plural(count, singular, several) {
    return count + " " + (count === 1 ? singular : (several || singular + "s"));
  }

  // ------------------------------------------------------------------ players

  // One player sounds at a time; a player started after another of its scenario picks up
  // at the position the other was at (so A/B compares the same bars); every player loops.
  var lastActive = {};
  var audios = Array.prototype.slice.call(document.querySelectorAll("audio[data-clip]"));

  function syncTo(audio, seconds) {
    audio.syncedAt = Date.now();  // this seek is the page's, not the listener's
    audio.currentTime = Math.max(0, Math.min(seconds, (audio.duration || Infinity) - 0.01));
  }

  audios.forEach(function (audio) {
    audio.src = clipSource(audio.getAttribute("data-clip"));
    var section = audio.closest("section.scenario");
    var sid = section.getAttribute("data-scenario");
    audio.addEventListener("seeking", function () {
      // A listener who moves a player sets the position the next player starts from.
      if (!audio.syncedAt || Date.now() - audio.syncedAt > 300) { lastActive[sid] = audio; }
    });
    audio.addEventListener("play", function () {
      audios.forEach(function (other) { if (other !== audio && !other.paused) { other.pause(); } });
      var previous = lastActive[sid];
      if (previous && previous !== audio && Math.abs(previous.currentTime - audio.currentTime) > 0.02) {
        syncTo(audio, previous.currentTime);
      }
      lastActive[sid] = audio;
      showPlaying(section);
    });
    audio.addEventListener("pause", function () { showPlaying(section); });
  });

  function player(section, role) {
    return section.querySelector('audio[data-role="' + role + '"]');
  }

  function showPlaying(section) {
    var names = {anchor: "the anchor", target: "the target", mix: "A: the mix",
                 advised: "B: the advised mix"};
    var playing = null;
    section.querySelectorAll("figure.player").forEach(function (figure) {
      var audio = figure.querySelector("audio");
      figure.classList.toggle("playing", !audio.paused);
      if (!audio.paused) { playing = audio.getAttribute("data-role"); }
    });
    var button = section.querySelector(".ab-switch");
    button.setAttribute("aria-pressed", playing === "advised" ? "true" : "false");
    section.querySelector(".now-playing").textContent = playing ? "Playing " + names[playing] : "";
  }

  function switchAB(section) {
    var sid = section.getAttribute("data-scenario");
    var mix = player(section, "mix");
    var advised = player(section, "advised");
    // Playing: switch to the other one. Paused: the other one than the last heard of the
    // two (A first), from the position the last player heard stopped at.
    var from = !mix.paused ? mix : (!advised.paused ? advised : (lastActive[sid] || mix));
    var to = from === mix ? advised : mix;
    if (!lastActive[sid]) { to = mix; }
    syncTo(to, from.currentTime);
    lastActive[sid] = to;
    var started = to.play();
    if (started && started.catch) {
      started.catch(function (error) { status.textContent = "The audio cannot play: " + error.message; });
    }
  }

  document.querySelectorAll(".ab-switch").forEach(function (button) {
    button.addEventListener("click", function () { switchAB(button.closest("section.scenario")); });
  });

  // ------------------------------------------------------------------ ratings

  function state(section) {
    var ratings = {};
    criteria.forEach(function (criterion) {
      var checked = section.querySelector('input[data-criterion="' + criterion + '"]:checked');
      ratings[criterion] = checked ? checked.value : "";
    });
    var feedback = {};
    config.feedback.forEach(function (name) {
      feedback[name] = section.querySelector('textarea[data-feedback="' + name + '"]').value;
    });
    return {ratings: ratings, feedback: feedback};
  }

  function complete(current) {
    return criteria.every(function (criterion) { return current.ratings[criterion] !== ""; });
  }

  function touched(current) {
    return criteria.some(function (c) { return current.ratings[c] !== ""; }) ||
      config.feedback.some(function (name) { return current.feedback[name].trim() !== ""; });
  }

  function update() {
    var done = 0;
    var partly = 0;
    sections.forEach(function (section) {
      var current = state(section);
      var finished = complete(current);
      var partial = !finished && touched(current);
      section.classList.toggle("done", finished);
      section.classList.toggle("partial", partial);
      if (finished) { done += 1; }
      if (partial) { partly += 1; }
    });
    document.getElementById("progress").value = done;
    document.getElementById("progress-text").textContent =
      done + " of " + plural(sections.length, "scenario") + " rated" +
      (partly ? "; " + plural(partly, "scenario") + " partly rated" : "");
    return done;
  }

  // The scenario in hand: the last one the rater touched or jumped to.
  var current = -1;
  document.addEventListener("focusin", function (event) {
    var section = event.target.closest && event.target.closest("section.scenario");
    if (section) { current = sections.indexOf(section); }
  });

  function nextUnrated() {
    for (var step = 1; step <= sections.length; step += 1) {
      var index = (current + step) % sections.length;
      if (!complete(state(sections[index]))) {
        current = index;
        sections[index].scrollIntoView({block: "start"});
        sections[index].focus({preventScroll: true});
        status.textContent = "";
        return sections[index];
      }
    }
    status.textContent = allRatedMessage;
    return null;
  }

  return {sections: sections, status: status, plural: plural, state: state,
          complete: complete, touched: touched, update: update, nextUnrated: nextUnrated};
};
