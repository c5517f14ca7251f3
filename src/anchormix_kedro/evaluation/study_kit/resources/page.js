(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("study-config").textContent);
  var clips = JSON.parse(document.getElementById("study-clips").textContent);
  var criteria = config.criteria;
  var storageKey = "anchormix-study:" + config.study_id;
  var sections = Array.prototype.slice.call(document.querySelectorAll("section.scenario"));
  var status = document.getElementById("status");
  var rater = document.getElementById("rater");
  var consent = document.getElementById("consent");
  var raterFields = {
    rater_role: document.getElementById("rater_role"),
    rater_experience: document.getElementById("rater_experience")
  };

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
    audio.src = clips[audio.getAttribute("data-clip")];
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

  function workflowAnswers() {
    var answers = {};
    config.workflow.forEach(function (name) {
      answers[name] = document.getElementById(name).value;
    });
    return answers;
  }

  function save() {
    var saved = {rater: rater.value, consent: consent.checked, workflow: workflowAnswers(),
                 details: {}, scenarios: {}};
    Object.keys(raterFields).forEach(function (name) { saved.details[name] = raterFields[name].value; });
    sections.forEach(function (section) {
      saved.scenarios[section.getAttribute("data-scenario")] = state(section);
    });
    try { window.localStorage.setItem(storageKey, JSON.stringify(saved)); } catch (e) { }
  }

  function restore() {
    var saved = null;
    try { saved = JSON.parse(window.localStorage.getItem(storageKey) || "null"); } catch (e) { }
    if (!saved) { return; }
    rater.value = saved.rater || "";
    consent.checked = Boolean(saved.consent);
    Object.keys(raterFields).forEach(function (name) {
      raterFields[name].value = (saved.details && saved.details[name]) || "";
    });
    config.workflow.forEach(function (name) {
      document.getElementById(name).value = (saved.workflow && saved.workflow[name]) || "";
    });
    sections.forEach(function (section) {
      var entry = saved.scenarios && saved.scenarios[section.getAttribute("data-scenario")];
      if (!entry) { return; }
      criteria.forEach(function (criterion) {
        var value = entry.ratings && entry.ratings[criterion];
        if (!value) { return; }
        section.querySelectorAll('input[data-criterion="' + criterion + '"]').forEach(
          function (input) { input.checked = input.value === String(value); });
      });
      config.feedback.forEach(function (name) {
        section.querySelector('textarea[data-feedback="' + name + '"]').value =
          (entry.feedback && entry.feedback[name]) || "";
      });
    });
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
    status.textContent = "Every scenario is rated: download your ratings when you are ready.";
    return null;
  }

  // ------------------------------------------------------------------ download

  // A cell a spreadsheet would run as a formula gets a leading apostrophe; the loader
  // (anchormix_kedro.evaluation.ratings.restore_cell) takes it off again.
  function neutralise(text) {
    var starts = config.formula_starts;
    var escaped = text.length > 1 && text.charAt(0) === "'" &&
      (starts.indexOf(text.charAt(1)) >= 0 || text.charAt(1) === "'");
    return (starts.indexOf(text.charAt(0)) >= 0 || escaped) ? "'" + text : text;
  }

  function csvField(value) {
    return '"' + neutralise(String(value)).replace(/"/g, '""') + '"';
  }

  function safeName(text) {
    return String(text).replace(/[^A-Za-z0-9_-]+/g, "_").slice(0, 40);
  }

  function missingDetails() {
    var missing = [];
    if (!rater.value.trim()) { missing.push("your name or initials"); }
    if (!raterFields.rater_role.value) { missing.push("your role"); }
    if (!raterFields.rater_experience.value) { missing.push("your mixing experience"); }
    if (!consent.checked) { missing.push("your consent"); }
    return missing;
  }

  function download() {
    var missing = missingDetails();
    if (missing.length) {
      status.textContent = "Please fill in " + missing.join(", ") + " (About you) before downloading.";
      document.getElementById("about-you").scrollIntoView({block: "start"});
      return;
    }
    var name = rater.value.trim();
    var workflow = workflowAnswers();
    var lines = [config.columns.map(csvField).join(",")];
    var incomplete = 0;
    sections.forEach(function (section) {
      var current = state(section);
      if (!complete(current)) {
        if (touched(current)) { incomplete += 1; }
        return;
      }
      var values = {study_id: config.study_id, rater: name, consent: consent.value,
                    rater_role: raterFields.rater_role.value,
                    rater_experience: raterFields.rater_experience.value,
                    scenario_id: section.getAttribute("data-scenario")};
      criteria.forEach(function (criterion) { values[criterion] = current.ratings[criterion]; });
      config.feedback.forEach(function (field) { values[field] = current.feedback[field].trim(); });
      config.workflow.forEach(function (field) { values[field] = workflow[field].trim(); });
      lines.push(config.columns.map(function (column) {
        return csvField(values[column] === undefined ? "" : values[column]);
      }).join(","));
    });
    if (lines.length === 1) {
      status.textContent = "No scenario is fully rated yet: rate all four criteria first.";
      return;
    }
    var blob = new Blob([lines.join("\r\n") + "\r\n"], {type: "text/csv;charset=utf-8"});
    var url = URL.createObjectURL(blob);
    var link = document.createElement("a");
    link.href = url;
    link.download = "ratings_" + safeName(config.study_id) + "_" + safeName(name) + ".csv";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
    var rated = lines.length - 1;
    status.textContent = "Downloaded " + plural(rated, "rated scenario") +
      (incomplete ? "; " + plural(incomplete, "partly rated scenario") +
        (incomplete === 1 ? " was" : " were") + " left out." : ".");
  }

  restore();
  update();
  document.addEventListener("change", function () { update(); save(); });
  document.addEventListener("input", function (event) {
    if (event.target.tagName === "TEXTAREA" || event.target === rater) { update(); save(); }
  });
  document.getElementById("download").addEventListener("click", download);
  document.getElementById("next-unrated").addEventListener("click", nextUnrated);
})();
