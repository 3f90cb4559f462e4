/* imagegen: live progress of a queued "Generate images…" run in the Django admin.
 *
 * Polls the run's status endpoint (POST, with the page's CSRF token) until every generation
 * has finished, updating the progress bar, the summary line, the counts and the rows.
 */
'use strict';
(function () {
  const POLL = 2000;

  function start(root) {
    const token = root.querySelector('input[name="csrfmiddlewaretoken"]').value;
    const bar = root.querySelector('progress');
    const summary = root.querySelector('[data-imagegen-summary]');
    const template = root.dataset.summaryTemplate;
    const doneText = root.dataset.doneText;

    function render(state) {
      bar.max = state.total;
      bar.value = state.done;
      bar.textContent = state.done + '/' + state.total;
      let text = template.replace('%(done)s', state.done).replace('%(total)s', state.total)
        .replace('%(cost)s', state.cost);
      if (state.finished) { text += ' ' + doneText; }
      summary.textContent = text;
      for (const item of root.querySelectorAll('[data-imagegen-counts] [data-status]')) {
        item.querySelector('[data-count]').textContent = state.counts[item.dataset.status] || 0;
      }
      for (const row of state.rows) {
        const line = root.querySelector('[data-imagegen-rows] tr[data-id="' + row.id + '"]');
        if (!line) { continue; }
        const status = line.querySelector('[data-cell="status"]');
        const badge = document.createElement('span');
        badge.className = 'imagegen-status imagegen-status--' + row.status;
        badge.textContent = row.status_label;
        status.replaceChildren(badge);
        if (row.error) {
          const error = document.createElement('span');
          error.className = 'imagegen-error';
          error.textContent = ' ' + row.error;
          status.append(error);
        }
        line.querySelector('[data-cell="cost"]').textContent = row.cost;
      }
    }

    async function poll() {
      const data = new FormData();
      data.append('csrfmiddlewaretoken', token);
      try {
        const response = await fetch(root.dataset.statusUrl, {
          method: 'POST', body: data, credentials: 'same-origin',
          headers: { 'X-CSRFToken': token, 'Accept': 'application/json' },
        });
        if (response.ok) {
          const state = await response.json();
          render(state);
          if (state.finished) { return; }
        } else if (response.status >= 400 && response.status < 500) {
          // Logged out or no longer allowed: asking again will not help (reloading shows why).
          return;
        }
      } catch (err) {
        // A dropped poll is retried on the next tick.
      }
      setTimeout(poll, POLL);
    }
    if (root.dataset.finished !== 'true') { setTimeout(poll, POLL); }
  }

  document.addEventListener('DOMContentLoaded', function () {
    for (const root of document.querySelectorAll('[data-imagegen-progress]')) { start(root); }
  });
})();
