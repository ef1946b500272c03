"""The report's one inline script: sortable, filterable tables, and its CSP hash.

The tables are plain HTML first; the script only adds behaviour (click a header
to sort, type to filter rows), so the report reads the same with JavaScript off.
The page's Content-Security-Policy allows this script alone, by its SHA-256, and
nothing from the network.
"""

from __future__ import annotations

import base64
import hashlib

__all__ = ["CSP", "TABLES_JS"]

TABLES_JS = r"""
(function () {
  "use strict";
  // Sortable, filterable tables. The tables are plain HTML first: without JavaScript
  // nothing here runs and every row is shown in the analysis order.
  var each = function (list, fn) { Array.prototype.forEach.call(list, fn); };
  function cellAt(row, col) {  // the cell under header column `col`, across colspans
    for (var i = 0, at = 0; i < row.cells.length; i++) {
      at += row.cells[i].colSpan;
      if (at > col) return row.cells[i];
    }
    return null;
  }
  function key(row, col, text) {
    var cell = cellAt(row, col), t = cell ? cell.textContent.trim() : "";
    if (text) return t.toLowerCase();
    var n = parseFloat(
      t.replace(/^[^0-9+\-\u2212.]+/, "").replace(/\u2212/g, "-").replace(/,/g, ""));
    return row.classList.contains("suppressed") ? NaN : n;
  }
  function sort(table, th) {
    var col = th.cellIndex, text = th.classList.contains("l");
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    each(th.parentNode.cells, function (c) { c.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {  // "all" stays on top; rows without a number go last
      var pin = b.classList.contains("all") - a.classList.contains("all");
      if (pin) return pin;
      var x = key(a, col, text), y = key(b, col, text);
      if (text) return x.localeCompare(y) * dir;
      if (isNaN(x) || isNaN(y)) return isNaN(x) - isNaN(y);
      return (x - y) * dir;
    });
    each(rows, function (r) { body.appendChild(r); });
  }
  function filter(table, query) {
    var q = query.trim().toLowerCase();
    each(table.tBodies[0].rows, function (r) {
      var text = r.textContent.toLowerCase();
      r.hidden = q !== "" && !r.classList.contains("all") && text.indexOf(q) < 0;
    });
  }
  document.documentElement.classList.add("js");
  each(document.querySelectorAll("table.sortable"), function (table) {
    each(table.tHead.rows[0].cells, function (th) {
      th.tabIndex = 0;
      th.title = "Sort by this column";
      th.addEventListener("click", function () { sort(table, th); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(table, th); }
      });
    });
    var label = document.createElement("label"), input = document.createElement("input");
    label.className = "filter muted";
    label.textContent = "Filter rows ";
    input.type = "search";
    input.placeholder = table.getAttribute("data-filter") || "text in the row";
    input.addEventListener("input", function () { filter(table, input.value); });
    label.appendChild(input);
    var box = table.closest(".scroll") || table;
    box.parentNode.insertBefore(label, box);
  });
})();
"""

_DIGEST = base64.b64encode(hashlib.sha256(TABLES_JS.encode()).digest()).decode()
CSP = f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{_DIGEST}'"
