// dsv review page: context toggle, class filter, zoom and keyboard navigation.
// Small on purpose; without it every card is still shown. No network.
(function () {
  "use strict";
  var body = document.body;
  var cards = Array.prototype.slice.call(document.querySelectorAll(".card"));
  var ctx = document.getElementById("ctx");
  var cls = document.getElementById("cls");
  var shown = document.getElementById("shown");
  var page = Number(body.getAttribute("data-page") || 0);
  var pages = {};
  (window.DSV_PAGES || []).forEach(function (p) { pages["=" + p[0]] = p[1]; });
  var current = null;
  var filter = "";

  function store(key, value) {
    try { sessionStorage.setItem(key, value); } catch (e) { /* file:// may refuse */ }
  }
  function stored(key) {
    try { return sessionStorage.getItem(key); } catch (e) { return null; }
  }

  function setContext(on) {
    body.classList.toggle("no-context", !on);
    if (ctx) ctx.checked = on;
    store("dsv-review-context", on ? "1" : "0");
  }

  function visible() {
    return cards.filter(function (c) { return !c.hidden; });
  }

  // The neighbouring page with frames of the filtered class (any page without one).
  function neighbour(step) {
    var list = filter ? pages["=" + filter] : null;
    if (!list) return page + step;
    var best = 0;
    list.forEach(function (p) {
      if (step > 0 ? p > page && (!best || p < best) : p < page && p > best) best = p;
    });
    return best;
  }

  function pageName(n) {
    var s = String(n);
    while (s.length < 4) s = "0" + s;
    return s + ".html";
  }

  function setFilter(name) {
    filter = name;
    cards.forEach(function (c) {
      var list = (c.getAttribute("data-classes") || "").split("\n");
      c.hidden = name !== "" && list.indexOf(name) < 0;
    });
    if (cls) cls.value = name;
    if (shown) shown.textContent = visible().length + " of " + cards.length + " frames shown";
    var hash = name ? "#class=" + encodeURIComponent(name) : "";
    if (page) {
      var total = Number(body.getAttribute("data-pages") || 0);
      [["next", 1], ["prev", -1]].forEach(function (nd) {
        document.querySelectorAll("a." + nd[0]).forEach(function (a) {
          var n = neighbour(nd[1]);
          if (n >= 1 && n <= total) {
            a.href = pageName(n) + hash;
            a.removeAttribute("aria-disabled");
          } else {
            a.removeAttribute("href");
            a.setAttribute("aria-disabled", "true");
          }
        });
      });
    }
    if (location.hash.indexOf("#frame-") !== 0) {
      try { history.replaceState(null, "", location.pathname + location.search + hash); } catch (e) { /* kept as is */ }
    }
  }

  function readHash() {
    var h = location.hash;
    if (h.indexOf("#class=") === 0) {
      var name = "";
      try { name = decodeURIComponent(h.slice(7)); } catch (e) { name = ""; }
      setFilter(name);
    } else if (h.indexOf("#frame-") === 0) {
      var c = document.getElementById(h.slice(1));
      if (c) mark(c);
    }
  }

  function mark(c) {
    if (current) current.classList.remove("current");
    current = c;
    c.classList.add("current");
  }

  function zoomed() {
    return document.querySelector(".card.zoom");
  }

  function zoom(c, on) {
    var z = zoomed();
    if (z) z.classList.remove("zoom");
    if (c && on) {
      c.classList.add("zoom");
      mark(c);
    }
    body.classList.toggle("zooming", !!(c && on));
  }

  // The card at the top of the screen, when none was moved to yet.
  function atScroll(v) {
    for (var i = 0; i < v.length; i++) {
      if (v[i].getBoundingClientRect().bottom > 48) return i;
    }
    return v.length - 1;
  }

  function go(step) {
    var v = visible();
    if (!v.length) return;
    var at = current ? v.indexOf(current) : -1;
    var next = at < 0 ? atScroll(v) : at + step;
    if (next < 0 || next >= v.length) {
      // Past the page's first or last frame: the neighbouring page.
      var a = document.querySelector(step > 0 ? "a.next" : "a.prev");
      if (a && a.getAttribute("href")) location.href = a.href;
      return;
    }
    var wasZoomed = !!zoomed();
    mark(v[next]);
    if (wasZoomed) zoom(v[next], true);
    v[next].scrollIntoView({ block: "start" });
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target && e.target.tagName;
    if (t === "INPUT" || t === "SELECT" || t === "TEXTAREA") return;
    if (e.key === "Enter" && (t === "A" || t === "BUTTON" || t === "SUMMARY")) return;
    var k = e.key;
    if (k === "j" || k === "ArrowRight") go(1);
    else if (k === "k" || k === "ArrowLeft") go(-1);
    else if (k === "z" || k === "Enter") {
      var c = current || visible()[atScroll(visible())];
      if (c) zoom(c, !c.classList.contains("zoom"));
    } else if (k === "Escape") zoom(null, false);
    else if (k === "c") setContext(body.classList.contains("no-context"));
    else if (k === "n" || k === "p") {
      var a = document.querySelector(k === "n" ? "a.next" : "a.prev");
      if (a && a.getAttribute("href")) location.href = a.href;
      return;
    } else return;
    e.preventDefault();
  });

  cards.forEach(function (c) {
    var pic = c.querySelector(".pic");
    if (!pic) return;
    pic.addEventListener("click", function (e) {
      // A click on the zoomed picture or on the dark around it closes it.
      if (c.classList.contains("zoom")) zoom(null, false);
      else if (e.target.closest(".stage")) zoom(c, true);
    });
  });

  if (ctx) ctx.addEventListener("change", function () { setContext(ctx.checked); });
  if (cls) cls.addEventListener("change", function () { setFilter(cls.value); });
  window.addEventListener("hashchange", readHash);
  setContext(stored("dsv-review-context") !== "0");
  // A "#class=" fragment (a link from the summary, or the previous page) sets
  // the filter; setting it first would replace the fragment.
  if (location.hash.indexOf("#class=") === 0) readHash();
  else { setFilter(""); readHash(); }
})();
