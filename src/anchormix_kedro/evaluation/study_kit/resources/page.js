
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("study-config").textContent);
  var clips = JSON.parse(document.getElementById("study-clips").textContent);
  var criteria = config.criteria;
  var storageKey = "anchormix-study:" + config.study_id;
  var sections = Array.prototype.slice.call(document.querySelectorAll("section.scenario"));
  var status = document.getElementById("status");
  var rater = document.getElementById("rater");

  document.querySelectorAll("audio[data-clip]").forEach(function (audio) {
    audio.src = clips[audio.getAttribute("data-clip")];
  });

  function state(section) {
    var ratings = {};
    criteria.forEach(function (criterion) {
      var checked = section.querySelector(
        'input[data-criterion="' + criterion + '"]:checked');
      ratings[criterion] = checked ? checked.value : "";
    });
    var comment = section.querySelector("textarea[data-comment]").value;
    return {ratings: ratings, comment: comment};
  }

  function complete(current) {
    return criteria.every(function (criterion) { return current.ratings[criterion] !== ""; });
  }

  function update() {
    var done = 0;
    sections.forEach(function (section) {
      var finished = complete(state(section));
      section.classList.toggle("done", finished);
      if (finished) { done += 1; }
    });
    document.getElementById("progress").value = done;
    document.getElementById("progress-text").textContent =
      done + " of " + sections.length + " scenarios rated";
    return done;
  }

  function save() {
    var saved = {rater: rater.value, scenarios: {}};
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
    sections.forEach(function (section) {
      var entry = saved.scenarios && saved.scenarios[section.getAttribute("data-scenario")];
      if (!entry) { return; }
      criteria.forEach(function (criterion) {
        var value = entry.ratings && entry.ratings[criterion];
        if (!value) { return; }
        section.querySelectorAll('input[data-criterion="' + criterion + '"]').forEach(
          function (input) { input.checked = input.value === String(value); });
      });
      section.querySelector("textarea[data-comment]").value = entry.comment || "";
    });
  }

  function safeName(text) {
    return String(text).replace(/[^A-Za-z0-9_-]+/g, "_").slice(0, 40);
  }

  function csvField(value) {
    return '"' + String(value).replace(/"/g, '""') + '"';
  }

  function download() {
    var name = rater.value.trim();
    if (!name) {
      status.textContent = "Please enter your name (or initials) before downloading.";
      rater.focus();
      return;
    }
    var lines = [config.columns.map(csvField).join(",")];
    var incomplete = 0;
    sections.forEach(function (section) {
      var current = state(section);
      if (!complete(current)) {
        var touched = criteria.some(function (c) { return current.ratings[c] !== ""; });
        if (touched || current.comment.trim()) { incomplete += 1; }
        return;
      }
      var row = [config.study_id, name, section.getAttribute("data-scenario")];
      criteria.forEach(function (criterion) { row.push(current.ratings[criterion]); });
      row.push(current.comment.trim());
      lines.push(row.map(csvField).join(","));
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
    status.textContent = "Downloaded " + (lines.length - 1) + " rated scenarios" +
      (incomplete ? "; " + incomplete + " partly rated scenarios were left out." : ".");
  }

  restore();
  update();
  document.addEventListener("change", function () { update(); save(); });
  document.addEventListener("input", function (event) {
    if (event.target.tagName === "TEXTAREA" || event.target === rater) { save(); }
  });
  document.getElementById("download").addEventListener("click", download);
})();
