// fieldsync web app: the only script of our own. No inline scripts anywhere (CSP).
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Every change the pages send carries the session's CSRF token.
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  // Charts: the server writes each chart's ECharts option as JSON beside its element.
  function drawCharts(root) {
    if (!window.echarts) return;
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      var source = document.getElementById(el.getAttribute("data-chart"));
      if (!source) return;
      var chart = window.echarts.getInstanceByDom(el) || window.echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(JSON.parse(source.textContent), true);
      el.setAttribute("data-drawn", "true");
    });
  }
  window.addEventListener("resize", function () {
    document.querySelectorAll("[data-drawn]").forEach(function (el) {
      var chart = window.echarts && window.echarts.getInstanceByDom(el);
      if (chart) chart.resize();
    });
  });
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("[data-drawn]").forEach(function (el) {
      var chart = window.echarts && window.echarts.getInstanceByDom(el);
      if (chart) chart.resize();
    });
  });

  // Print buttons (no inline onclick under the CSP).
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target && target.matches && target.matches("[data-print]")) {
      event.preventDefault();
      window.print();
    }
  });

  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSettle", function (event) { drawCharts(event.detail.elt || document); });
})();
