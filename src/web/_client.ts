/**
 * The dashboard's one inline script (no build step). It
 *
 * - opens a Server-Sent Events stream for the current page and swaps in the regions the server
 *   re-rendered, keeping ticked checkboxes and open `<details>`;
 * - draws the overview's throughput and failure-rate chart as SVG from the streamed series;
 * - sends action forms with `fetch` (CSRF token in a header), shows the outcome, and lets the
 *   stream update the page, so an action never reloads it;
 * - goes on with a search scan as a stream, adding rows and moving its progress bar;
 * - shows times in the viewer's zone.
 *
 * @module
 */

/** The script's source. */
export const CLIENT_SCRIPT = String.raw`
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf"]') || {}).content || "";
  var SVG = "http://www.w3.org/2000/svg";

  function localize(root) {
    root.querySelectorAll("time[data-local]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) {
        var out = t.getAttribute("data-local") === "zone"
          ? d.toLocaleString(undefined, { timeZoneName: "short" })
          : d.toLocaleString();
        var target = t.querySelector("[data-local-text]") || t;
        target.textContent = out;
        t.title = d.toISOString();
      }
    });
  }

  function flash(message, bad) {
    var el = document.getElementById("flash");
    if (!el) return;
    el.textContent = message || "";
    el.className = bad ? "bad" : "";
    clearTimeout(flash.timer);
    flash.timer = setTimeout(function () { el.textContent = ""; }, bad ? 9000 : 4000);
  }

  function swapRegion(id, markup) {
    var region = document.querySelector('[data-region="' + id + '"]');
    if (!region) return;
    var checked = {};
    region.querySelectorAll('input[type="checkbox"][name="id"]:checked').forEach(function (c) {
      checked[c.value] = true;
    });
    var open = {};
    region.querySelectorAll("details[data-key][open]").forEach(function (d) {
      open[d.getAttribute("data-key")] = true;
    });
    region.innerHTML = markup;
    region.querySelectorAll('input[type="checkbox"][name="id"]').forEach(function (c) {
      if (checked[c.value]) c.checked = true;
    });
    region.querySelectorAll("details[data-key]").forEach(function (d) {
      if (open[d.getAttribute("data-key")]) d.open = true;
    });
    localize(region);
    document.dispatchEvent(new CustomEvent("kvq:region", { detail: { id: id } }));
  }

  function el(name, attrs, text) {
    var e = document.createElementNS(SVG, name);
    for (var k in attrs) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // A round step for about four gridlines up to max: 1, 2 or 5 times a power of ten.
  function niceStep(max) {
    var raw = max / 4, p = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10));
    var m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }

  function hhmm(t) {
    var d = new Date(t);
    return ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2);
  }

  var DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

  // A time on the axis or in a tooltip: with the weekday over more than a day.
  function when(t, span) {
    return span > 86400000 ? DAYS[new Date(t).getDay()] + " " + hhmm(t) : hhmm(t);
  }

  // One bar a bin (a minute, 15 minutes or an hour) of a queue's last hour, 24 or 72 hours, with
  // gridlines, a clock-time axis and each bar's values on hover. value(p) is the bar's height, or
  // null for no data; label(p) its tooltip.
  function drawChart(svg, data, value, opts) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var w = svg.clientWidth || 600, h = svg.clientHeight || 170;
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    var left = 48, right = 10, top = 10, bottom = 22;
    var points = data.points || [];
    var bucket = data.bucket || 60000;
    var span = data.span || 3600000;
    var t0 = points.length ? points[0].at : data.now - span;
    var t1 = (points.length ? points[points.length - 1].at : data.now) + bucket;
    var max = opts.min || 0;
    points.forEach(function (p) { var v = value(p); if (v !== null && v > max) max = v; });
    if (!(max > 0)) max = 1;
    var step = niceStep(max);
    max = Math.ceil(max / step) * step;
    var x = function (t) { return left + (t - t0) / (t1 - t0) * (w - left - right); };
    var y = function (v) { return top + (1 - v / max) * (h - top - bottom); };
    for (var g = 0; g <= max + step / 2; g += step) {
      svg.appendChild(el("line", { x1: left, y1: y(g), x2: w - right, y2: y(g), class: g === 0 ? "axis" : "grid" }));
      svg.appendChild(el("text", { x: left - 6, y: y(g) + 4, "text-anchor": "end", class: "tick" }, fmt(g) + opts.unit));
    }
    // A time label every 10 minutes of the clock over an hour, every 3 hours over a day, every
    // 12 over three (with the day).
    var tick = span <= 3600000 ? 600000 : span <= 86400000 ? 10800000 : 43200000;
    var zone = new Date(t0).getTimezoneOffset() * 60000;
    var first = Math.ceil((t0 - zone) / tick) * tick + zone;
    for (var t = first; t <= t1; t += tick) {
      svg.appendChild(el("line", { x1: x(t), y1: h - bottom, x2: x(t), y2: h - bottom + 4, class: "axis" }));
      svg.appendChild(el("text", { x: x(t), y: h - 6, "text-anchor": "middle", class: "tick" }, when(t, span)));
    }
    var any = false;
    var barW = Math.max(1, (w - left - right) / Math.max(1, points.length) - 1);
    points.forEach(function (p) {
      var v = value(p);
      var g = el("g", { class: "bar" });
      var hit = el("rect", { x: x(p.at), y: top, width: barW, height: h - top - bottom, fill: "transparent" });
      g.appendChild(el("title", {}, when(p.at, span) + " · " + opts.label(p)));
      g.appendChild(hit);
      if (v !== null && v > 0) {
        any = true;
        g.appendChild(el("rect", { x: x(p.at), y: y(v), width: barW, height: y(0) - y(v), fill: opts.color }));
      }
      svg.appendChild(g);
    });
    if (!any) {
      svg.appendChild(el("text", { x: left + 10, y: top + 30, class: "tick" }, opts.empty));
    }
  }

  function fmt(v) { return v >= 100 ? Math.round(v) : Math.round(v * 10) / 10; }

  function drawCharts(data) {
    if (!data) return;
    var a = document.getElementById("chart-rate");
    var b = document.getElementById("chart-fail");
    if (a) {
      drawChart(a, data, function (p) { return p.ended; }, {
        unit: "", color: "#2f6fde", empty: "no attempt ended in this period",
        label: function (p) {
          return p.ended + " attempts ended, " + p.failed + " failed" +
            (p.ended ? ", mean run " + fmt(p.runMs / p.ended) + " ms" : "");
        },
      });
    }
    if (b) {
      drawChart(b, data, function (p) { return p.ended ? p.failed / p.ended * 100 : null; }, {
        unit: "%", color: "#c8362f", min: 5, empty: "no failed attempt in this period",
        label: function (p) {
          return p.ended ? fmt(p.failed / p.ended * 100) + "% failed (" + p.failed + " of " + p.ended + ")" : "no attempts";
        },
      });
    }
  }

  var chartData = null;
  var initial = document.getElementById("chart-data");
  if (initial) {
    try { chartData = JSON.parse(initial.textContent); } catch (e) { chartData = null; }
    drawCharts(chartData);
    window.addEventListener("resize", function () { drawCharts(chartData); });
  }

  function setLive(state) {
    var dot = document.getElementById("live-dot");
    var text = document.getElementById("live-text");
    if (dot) dot.className = "live-dot " + (state === "live" ? "on" : "off");
    if (text) text.textContent = state;
  }

  if (document.body.hasAttribute("data-live") && window.EventSource) {
    var source = new EventSource("/events?path=" + encodeURIComponent(location.pathname + location.search));
    source.addEventListener("open", function () { setLive("live"); });
    source.addEventListener("error", function () { setLive("reconnecting"); });
    source.addEventListener("region", function (e) {
      var msg = JSON.parse(e.data);
      swapRegion(msg.id, msg.html);
    });
    source.addEventListener("chart", function (e) {
      chartData = JSON.parse(e.data);
      drawCharts(chartData);
    });
    source.addEventListener("gone", function () {
      setLive("gone");
      source.close();
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t.matches && t.matches("input[data-select-all]")) {
      var form = t.closest("form");
      form.querySelectorAll('input[type="checkbox"][name="id"]').forEach(function (c) {
        c.checked = t.checked;
      });
    }
    if (t.matches && t.matches("select[data-schedule-type]")) showTypeFields(t.closest("form"));
  });

  function showTypeFields(form) {
    if (!form) return;
    var sel = form.querySelector("select[data-schedule-type]");
    if (!sel) return;
    form.querySelectorAll("[data-for-type]").forEach(function (f) {
      f.hidden = f.getAttribute("data-for-type") !== sel.value;
    });
  }
  document.querySelectorAll("form").forEach(showTypeFields);

  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.hasAttribute("data-js")) return;
    e.preventDefault();
    var submitter = e.submitter || null;
    var url = (submitter && submitter.getAttribute("formaction")) || form.getAttribute("action");
    var body = new FormData(form);
    if (submitter && submitter.name) body.append(submitter.name, submitter.value);
    var ask = (submitter && submitter.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (submitter && submitter.hasAttribute("data-needs-selection") && !body.getAll("id").length) {
      flash("Select tasks first (tick the boxes on the left).", true);
      return;
    }
    if (ask && !window.confirm(ask)) return;
    var errorSlot = form.querySelector("[data-error]");
    if (errorSlot) errorSlot.textContent = "";
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    fetch(url, {
      method: "POST",
      body: new URLSearchParams(body),
      headers: { "Accept": "application/json", "X-CSRF-Token": csrf },
      credentials: "same-origin",
    }).then(function (res) {
      return res.json().catch(function () {
        return { ok: false, error: "The server answered " + res.status + " " + res.statusText };
      });
    }).then(function (out) {
      if (out.ok) {
        if (out.location) { location.assign(out.location); return; }
        flash(out.message || "Done");
        if (form.hasAttribute("data-reset")) { form.reset(); showTypeFields(form); }
      } else if (errorSlot) {
        errorSlot.textContent = out.error || "Failed";
      } else {
        flash(out.error || "Failed", true);
      }
    }).catch(function (err) {
      flash("Request failed: " + err.message, true);
    }).finally(function () {
      buttons.forEach(function (b) { b.disabled = b.hasAttribute("data-disabled"); });
    });
  });

  // A search scan that ran out of the page's time goes on as a stream: rows are added as they
  // are found, the progress bar moves, and the links that follow come last.
  function streamSearch(box) {
    var url = box.getAttribute("data-search-stream");
    var rows = box.querySelector("tbody[data-rows]");
    var empty = box.querySelector("[data-empty]");
    var pager = box.querySelector("[data-search-pager]");
    if (!url || !rows || !pager || !window.fetch || !window.TextDecoder) return;
    box.setAttribute("data-searching", "");
    var decoder = new TextDecoder();
    var buffer = "";
    function handle(msg) {
      if (msg.row) {
        rows.insertAdjacentHTML("beforeend", msg.row);
        localize(rows.lastElementChild);
        if (empty) empty.hidden = true;
      } else if (msg.progress) {
        var bar = pager.querySelector("[data-search-progress]");
        var read = pager.querySelector("[data-search-read]");
        if (bar) { bar.max = Math.max(msg.progress.total, msg.progress.scanned, 1); bar.value = msg.progress.scanned; }
        if (read) read.textContent = "searching… read " + msg.progress.scanned.toLocaleString() + " of ~" + msg.progress.total.toLocaleString() + " tasks";
      } else if (msg.end) {
        pager.outerHTML = msg.end.pager;
        pager = box.querySelector("[data-search-pager]");
        if (empty && rows.children.length === 0) { empty.textContent = "No task matches."; empty.hidden = false; }
        box.removeAttribute("data-searching");
      } else if (msg.error) {
        flash(msg.error, true);
        box.removeAttribute("data-searching");
      }
    }
    fetch(url, { headers: { accept: "application/x-ndjson" } }).then(function (res) {
      if (!res.ok || !res.body) throw new Error("the search stream answered " + res.status);
      var reader = res.body.getReader();
      function pump() {
        return reader.read().then(function (part) {
          if (part.done) return;
          buffer += decoder.decode(part.value, { stream: true });
          var lines = buffer.split("\n");
          buffer = lines.pop();
          lines.forEach(function (line) { if (line) handle(JSON.parse(line)); });
          return pump();
        });
      }
      return pump();
    }).catch(function (err) {
      flash("Search stopped: " + err.message, true);
      box.removeAttribute("data-searching");
    });
  }
  document.querySelectorAll("[data-search-stream]").forEach(streamSearch);

  localize(document);
})();
`;
