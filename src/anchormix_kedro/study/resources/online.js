// The study server's rating page: loads the rater's answers, saves each change as it is
// made (one request per item at a time, retried with the same save id until the server
// acknowledges it), never overwrites a newer answer saved elsewhere (the server answers
// 409 with it, and the page shows it), and warns before leaving with unsaved changes.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("study-config").textContent);
  var base = window.location.pathname.replace(/rate\/?$/, "");  // /r/<token>/
  var api = "/api" + base;                                     // /api/r/<token>/
  var form = window.AnchorMixStudy({
    config: config,
    clipSource: function (id) { return base + "clips/" + encodeURIComponent(id); },
    allRatedMessage: "Every scenario is rated: thank you, you are done."
  });
  var WORKFLOW = "workflow";
  var revisions = {};   // item -> the stored revision the page's answer is based on
  var changed = {};     // item -> a change not yet sent
  var inFlight = {};    // item -> the body being sent (kept for its retries)
  var failed = {};      // item -> why the server refused it (not retried)
  var retryDelay = 1000;
  var retryTimer = null;
  var offline = false;  // the last request found no server
  var loaded = false;
  var conflictShown = false;
  var saveState = document.getElementById("save-state");

  function section(item) { return document.querySelector('section.scenario[data-scenario="' + item + '"]'); }

  function answerOf(item) {
    if (item === WORKFLOW) {
      var texts = {};
      config.workflow.forEach(function (name) { texts[name] = document.getElementById(name).value; });
      return {ratings: {}, texts: texts};
    }
    var current = form.state(section(item));
    var ratings = {};
    config.criteria.forEach(function (c) {
      ratings[c] = current.ratings[c] === "" ? null : parseInt(current.ratings[c], 10);
    });
    return {ratings: ratings, texts: current.feedback};
  }

  function same(a, b) {
    return Object.keys(a.ratings).every(function (k) { return a.ratings[k] === (b.ratings[k] === undefined ? null : b.ratings[k]); }) &&
      Object.keys(a.texts).every(function (k) { return a.texts[k] === (b.texts[k] || ""); });
  }

  function show(answer) {
    var item = answer.item;
    revisions[item] = answer.revision;
    if (item === WORKFLOW) {
      config.workflow.forEach(function (name) { document.getElementById(name).value = answer.texts[name] || ""; });
      return;
    }
    var target = section(item);
    if (!target) { return; }
    if (Object.keys(answer.ratings).some(function (c) { return answer.ratings[c] !== null; })) {
      openScales(target);  // answered before (here or on another device)
    }
    config.criteria.forEach(function (c) {
      target.querySelectorAll('input[data-criterion="' + c + '"]').forEach(function (input) {
        input.checked = answer.ratings[c] !== null && input.value === String(answer.ratings[c]);
      });
    });
    config.feedback.forEach(function (name) {
      target.querySelector('textarea[data-feedback="' + name + '"]').value = answer.texts[name] || "";
    });
  }

  function unsaved() {
    return Object.keys(changed).length + Object.keys(inFlight).length;
  }

  function showState() {
    var waiting = unsaved();
    var refused = Object.keys(failed);
    if (refused.length) {
      saveState.textContent = "Not saved: " + failed[refused[0]];
      saveState.className = "save-state error";
    } else if (!loaded) {
      saveState.textContent = "Loading your answers…";
    } else if (offline && waiting) {
      saveState.textContent = "Not saved yet (" + form.plural(waiting, "change") + "): no connection to the study server, trying again…";
      saveState.className = "save-state offline";
    } else if (waiting) {
      saveState.textContent = "Saving…";
      saveState.className = "save-state saving";
    } else {
      saveState.textContent = "All answers saved";
      saveState.className = "save-state saved";
    }
  }

  function newSaveId() {
    var bytes = new Uint8Array(12);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function scheduleRetry() {
    if (retryTimer) { return; }
    retryTimer = setTimeout(function () { retryTimer = null; flush(); }, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 30000);
  }

  function flush() {
    if (!loaded) { return; }
    Object.keys(inFlight).forEach(function (item) { if (!inFlight[item].sending) { send(item); } });
    Object.keys(changed).forEach(send);
    showState();
  }

  function send(item) {
    var body = inFlight[item];
    if (body && body.sending) { return; }
    if (!body) {
      if (!changed[item]) { return; }
      delete changed[item];
      var answer = answerOf(item);
      body = {revision: revisions[item] || 0, ratings: answer.ratings, texts: answer.texts,
              save_id: newSaveId()};
      inFlight[item] = body;
    }
    body.sending = true;
    var payload = {revision: body.revision, ratings: body.ratings, texts: body.texts, save_id: body.save_id};
    fetch(api + "answers/" + encodeURIComponent(item), {
      method: "PUT", headers: {"Content-Type": "application/json"}, credentials: "same-origin",
      body: JSON.stringify(payload)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        body.sending = false;
        offline = false;
        if (response.status === 200) {
          delete inFlight[item];
          delete failed[item];
          revisions[item] = data.answer.revision;
          retryDelay = 1000;
          if (conflictShown) { form.status.textContent = ""; conflictShown = false; }
        } else if (response.status === 409) {
          delete inFlight[item];
          if (same(body, data.answer)) {
            // Our own save, whose reply was lost on the way: nothing to tell.
            revisions[item] = data.answer.revision;
          } else {
            delete changed[item];
            show(data.answer);
            form.update();
            form.status.textContent = "This answer was changed in another tab or on another device: the page now shows the latest saved answer. Make your change again if you still want it.";
            conflictShown = true;
          }
        } else if (response.status >= 500 || response.status === 429) {
          scheduleRetry();
        } else {
          delete inFlight[item];
          failed[item] = data.detail || ("the server answered " + response.status);
        }
        if (!inFlight[item] && changed[item]) { send(item); }
        showState();
      });
    }).catch(function () {
      body.sending = false;
      offline = true;
      scheduleRetry();
      showState();
    });
  }


  // ---------------------------------------------------------------- listening
  // Seconds played per item are reported to the server (time on task); a scenario's scales
  // open once its mix or advised mix has played for the study's listen-first seconds.
  var listened = {};   // item -> seconds of the mix or the advised mix played on this page
  var unsent = {};     // item -> seconds of any player not yet reported

  function openScales(section) {
    var scales = section && section.querySelector("fieldset.scales");
    if (scales) { scales.disabled = false; }
  }

  document.querySelectorAll("audio[data-clip]").forEach(function (audio) {
    var last = null;
    function stop() { last = null; }
    audio.addEventListener("timeupdate", function () {
      if (audio.paused) { last = null; return; }
      var now = audio.currentTime;
      var section = audio.closest("section.scenario");
      var item = section.getAttribute("data-scenario");
      if (last !== null && now > last && now - last < 1.5) {
        unsent[item] = (unsent[item] || 0) + (now - last);
        var role = audio.getAttribute("data-role");
        if (role === "mix" || role === "advised") {
          listened[item] = (listened[item] || 0) + (now - last);
          var scales = section.querySelector("fieldset.scales");
          if (scales && scales.disabled &&
              listened[item] >= parseFloat(scales.getAttribute("data-listen-first"))) {
            openScales(section);
          }
        }
      }
      last = now;
    });
    audio.addEventListener("seeking", stop);
    audio.addEventListener("pause", stop);
  });

  function reportListening() {
    var events = Object.keys(unsent).filter(function (item) { return unsent[item] >= 0.5; })
      .map(function (item) { return {kind: "listened", item: item, seconds: Math.round(unsent[item] * 10) / 10}; });
    if (!events.length) { return; }
    events.forEach(function (event) { delete unsent[event.item]; });
    fetch(api + "events", {method: "POST", headers: {"Content-Type": "application/json"},
                           credentials: "same-origin", keepalive: true,
                           body: JSON.stringify({events: events.slice(0, 100)})})
      .then(function (response) { if (!response.ok) { throw new Error(String(response.status)); } })
      .catch(function () {
        events.forEach(function (event) { unsent[event.item] = (unsent[event.item] || 0) + event.seconds; });
      });
  }
  setInterval(reportListening, 10000);

  function itemOf(element) {
    if (element.closest && element.closest("#workflow")) { return WORKFLOW; }
    var owner = element.closest && element.closest("section.scenario");
    return owner ? owner.getAttribute("data-scenario") : null;
  }

  var typing = {};
  function changedBy(event, delay) {
    var item = itemOf(event.target);
    if (!item) { return; }
    form.update();
    changed[item] = true;
    delete failed[item];
    clearTimeout(typing[item]);
    if (!loaded) {
      showState();  // sent once the stored answers (and their revisions) are loaded
    } else if (delay) {
      typing[item] = setTimeout(function () { send(item); showState(); }, delay);
      showState();
    } else {
      send(item);
      showState();
    }
  }

  function load() {
    return fetch(api + "state", {credentials: "same-origin", cache: "no-store"}).then(function (response) {
      if (!response.ok) { throw new Error("the server answered " + response.status); }
      return response.json();
    }).then(function (data) {
      data.answers.forEach(function (answer) {
        if (inFlight[answer.item]) { return; }
        if (changed[answer.item]) {
          // A change made here before the answers arrived: saved on top of the stored one.
          if (!loaded) { revisions[answer.item] = answer.revision; }
          return;
        }
        // Show newer answers from elsewhere.
        if (answer.revision !== revisions[answer.item]) { show(answer); }
      });
      var first = !loaded;
      loaded = true;
      document.querySelector("main").inert = false;
      form.update();
      if (first) { flush(); }
      showState();
    });
  }

  function firstLoad() {
    load().catch(function (error) {
      saveState.textContent = "Your answers could not be loaded yet (" + error.message + "): trying again…";
      saveState.className = "save-state error";
      setTimeout(firstLoad, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30000);
    });
  }

  document.addEventListener("change", function (event) {
    if (event.target.type === "radio") { changedBy(event, 0); }
  });
  document.addEventListener("input", function (event) {
    if (event.target.tagName === "TEXTAREA") { changedBy(event, 700); }
  });
  document.getElementById("next-unrated").addEventListener("click", form.nextUnrated);
  window.addEventListener("online", function () { retryDelay = 1000; flush(); });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && loaded) { load().catch(function () { }); }
    if (document.visibilityState === "hidden") { reportListening(); }
  });
  window.addEventListener("beforeunload", function (event) {
    if (unsaved()) {
      event.preventDefault();
      event.returnValue = "Some answers are not saved yet.";
      return event.returnValue;
    }
  });
  firstLoad();
  window.AnchorMixOnline = {unsaved: unsaved, reload: load, reportListening: reportListening,
                            listened: function (item) { return listened[item] || 0; }};
})();
