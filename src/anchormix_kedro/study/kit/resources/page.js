(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("study-config").textContent);
  var clips = JSON.parse(document.getElementById("study-clips").textContent);
  var form = window.AnchorMixStudy({
    config: config,
    clipSource: function (id) { return clips[id]; },
    allRatedMessage: "Every scenario is rated: download your ratings when you are ready."
  });
  var criteria = config.criteria;
  var storageKey = "anchormix-study:" + config.study_id;
  var sections = form.sections;
  var status = form.status;
  var plural = form.plural;
  var state = form.state;
  var complete = form.complete;
  var touched = form.touched;
  var update = form.update;
  var nextUnrated = form.nextUnrated;
  var rater = document.getElementById("rater");
  var consent = document.getElementById("consent");
  var raterFields = {
    rater_role: document.getElementById("rater_role"),
    rater_experience: document.getElementById("rater_experience")
  };
  // A random id per browser: a rater's later file supersedes their earlier one, and two
  // raters with the same initials stay two raters.
  var raterToken = null;

  function newToken() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
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
                 details: {}, scenarios: {}, rater_token: raterToken};
    Object.keys(raterFields).forEach(function (name) { saved.details[name] = raterFields[name].value; });
    sections.forEach(function (section) {
      saved.scenarios[section.getAttribute("data-scenario")] = state(section);
    });
    try {
      window.localStorage.setItem(storageKey, JSON.stringify(saved));
    } catch (error) {
      // Say so: the ratings are kept only in this page until the rater downloads them.
      status.textContent = "Your browser could not keep your latest answers (" + error.name +
        "): download your ratings now, or they are lost when this page closes.";
    }
  }

  function restore() {
    var saved = null;
    try { saved = JSON.parse(window.localStorage.getItem(storageKey) || "null"); } catch (e) { }
    raterToken = (saved && saved.rater_token) || newToken();
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
    var savedAt = new Date().toISOString();
    var incomplete = 0;
    sections.forEach(function (section) {
      var current = state(section);
      if (!complete(current)) {
        if (touched(current)) { incomplete += 1; }
        return;
      }
      var values = {study_id: config.study_id, rater: name, rater_token: raterToken,
                    saved_at: savedAt, consent: consent.value,
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
