// hangup's run page: filter and sort the cases, and put a case's ladder in
// place when it opens (its <template>), so that a page of many cases lays
// out only what is looked at. No library, nothing fetched.
'use strict';
(function () {
  // The case table and its filters (a run's page; a diff page has none).
  const body = document.querySelector('#case-table tbody');
  const rows = body ? Array.from(body.rows) : [];
  const status = document.getElementById('filter-status');
  const suite = document.getElementById('filter-suite');
  const text = document.getElementById('filter-text');
  const shown = document.getElementById('shown');

  function filter() {
    if (!body) return;
    const q = text.value.trim().toLowerCase();
    let n = 0;
    for (const row of rows) {
      const keep = (!status.value || row.dataset.status === status.value) &&
        (!suite.value || row.dataset.suite === suite.value) &&
        (!q || row.dataset.name.toLowerCase().includes(q));
      row.hidden = !keep;
      if (keep) n += 1;
    }
    shown.textContent = n + ' of ' + rows.length + ' cases shown';
  }
  if (body) {
    status.addEventListener('change', filter);
    suite.addEventListener('change', filter);
    text.addEventListener('input', filter);
  }

  const order = { name: 1, duration: 1 };
  for (const button of document.querySelectorAll('#case-table th button[data-sort]')) {
    button.addEventListener('click', function () {
      const key = button.dataset.sort;
      const sign = order[key];
      order[key] = -sign;
      const value = key === 'duration'
        ? function (row) { return Number(row.dataset.duration); }
        : function (row) { return row.dataset.name; };
      rows.sort(function (a, b) {
        const x = value(a), y = value(b);
        return (x < y ? -1 : x > y ? 1 : 0) * sign;
      });
      for (const row of rows) body.appendChild(row);
    });
  }

  // A ladder's SVG, from the rows the page holds (their format is in
  // harness/src/report/html/ladder.rs; every position is computed there).
  // Texts go into text nodes only: none becomes markup.
  const SVG = 'http://www.w3.org/2000/svg';
  function add(parent, name, attrs, text) {
    const e = document.createElementNS(SVG, name);
    for (const key in attrs) e.setAttribute(key, attrs[key]);
    if (text !== undefined) e.textContent = text;
    parent.appendChild(e);
    return e;
  }
  // `text` cut to `n` characters, with '…' when cut.
  function short(text, n) {
    const chars = Array.from(text);
    return chars.length <= n ? text : chars.slice(0, n - 1).join('') + '\u2026';
  }
  function draw(box) {
    const lines = box.textContent.split('\n');
    let i = 0;
    const text = function () { return lines[i++].slice(1); };
    const head = lines[i++].split(' ');
    const width = head[1], height = +head[2], top = +head[3], time = +head[4];
    const row = +head[5], middle = head[6], chars = +head[7];
    const svg = document.createElementNS(SVG, 'svg');
    for (const [key, value] of [['class', 'ladder'], ['role', 'img'], ['width', width],
      ['height', height], ['viewBox', '0 0 ' + width + ' ' + height]]) svg.setAttribute(key, value);
    add(svg, 'title', {}, 'Ladder: each side\'s calls in its margin, segments as arrows, time running down');
    const at = function (g, y, ms) {
      add(g, 'text', { class: 'time', x: time - 8, y: y, 'text-anchor': 'end' }, ms);
    };
    add(svg, 'text', { class: 'time', x: time - 8, y: row, 'text-anchor': 'end' }, 'ms');
    while (i < lines.length) {
      const f = lines[i++].split(' ');
      const y = +f[1];
      if (f[0] === 'C') {
        add(svg, 'text', { class: 'side', x: f[1], y: row, 'text-anchor': 'middle' }, f[2]);
        add(svg, 'line', { class: 'lifeline', x1: f[1], y1: top + 6, x2: f[1], y2: height - row });
      } else if (f[0] === 'H') {
        add(svg, 'text', { class: 'host', x: f[1], y: row + 13, 'text-anchor': 'middle' }, text());
      } else if (f[0] === 'G') {
        const g = add(svg, 'g', { class: 'gap' });
        add(g, 'line', { x1: time, y1: y - 5, x2: width, y2: y - 5 });
        add(g, 'text', { x: middle, y: y, 'text-anchor': 'middle' }, text());
      } else if (f[0] === 'N') {
        add(svg, 'text', { class: 'fold', x: middle, y: y, 'text-anchor': 'middle' }, text());
      } else if (f[0] === 'F') {
        const g = add(svg, 'g', { class: 'segment folded' });
        add(g, 'title', {}, f[4] + ' ms: ' + text());
        add(g, 'line', { x1: f[2], y1: y + 1, x2: f[3], y2: y + 5 });
      } else if (f[0] === 'S' || f[0] === 'X') {
        const label = text();
        const fault = f[0] === 'X' ? text() : null;
        const g = add(svg, 'g', { class: fault === null ? 'segment' : 'segment lost', 'data-at': f[4] });
        add(g, 'title', {}, f[4] + ' ms: ' + label + (fault === null ? '' : ' \u2014 lost: ' + fault));
        at(g, y, f[4]);
        const mid = (+f[2] + +f[3]) / 2;
        add(g, 'text', { class: 'label', x: Math.floor(mid), y: y - 3, 'text-anchor': 'middle' }, short(label, 44));
        const line = { x1: f[2], y1: y + 1, x2: f[3], y2: y + 5 };
        if (fault === null) {
          add(g, 'line', Object.assign({ 'marker-end': 'url(#arrowhead)' }, line));
        } else {
          add(g, 'line', line);
          add(g, 'text', { class: 'x', x: f[3], y: y + 10, 'text-anchor': 'middle' }, '\u2715');
          add(g, 'text', { class: 'fault', x: f[3], y: y + 22, 'text-anchor': 'middle' }, 'lost: ' + short(fault, 40));
        }
      } else if (f[0] === 'T') {
        const words = text();
        const g = add(svg, 'g', { class: f[4].split('.').join(' ') });
        add(g, 'title', {}, f[5] + ' ms: ' + words);
        // A failed step's expected and observed are read beside its event,
        // whose time they would only repeat.
        if (!g.classList.contains('verdict')) at(g, y, f[5]);
        add(g, 'text', { x: f[2], y: y, 'text-anchor': f[3] }, short(words, chars));
      }
    }
    box.textContent = '';
    box.classList.remove('rows');
    box.appendChild(svg);
  }

  // A case's ladder, put in place once.
  function fill(details) {
    const template = details.querySelector(':scope > template');
    if (template) {
      details.appendChild(template.content.cloneNode(true));
      template.remove();
    }
    for (const box of details.querySelectorAll('.ladder-box.rows')) draw(box);
  }
  document.addEventListener('toggle', function (event) {
    const target = event.target;
    if (target.matches && target.matches('details.case') && target.open) fill(target);
  }, true);

  // A link to one case (#case-...) opens it.
  function openHash() {
    if (!location.hash) return;
    const details = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (details && details.matches('details.case')) {
      fill(details);
      details.open = true;
      details.scrollIntoView();
    }
  }
  window.addEventListener('hashchange', openHash);
  // Any ladder outside a template is drawn now.
  for (const box of document.querySelectorAll('.ladder-box.rows')) draw(box);
  filter();
  openHash();
})();
