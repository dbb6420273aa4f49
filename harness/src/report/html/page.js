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

  // A case's ladder, put in place once.
  function fill(details) {
    const template = details.querySelector(':scope > template');
    if (template) {
      details.appendChild(template.content.cloneNode(true));
      template.remove();
    }
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
  filter();
  openHash();
})();
