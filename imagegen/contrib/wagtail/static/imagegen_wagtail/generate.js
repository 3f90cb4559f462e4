/* imagegen for Wagtail: the "imagegen-generate" Stimulus controller.
 *
 * One controller serves the image chooser's "Generate" tab (mode "chooser") and a page's
 * GeneratedImagePanel (mode "panel"). It posts to imagegen's admin endpoints (CSRF token in a
 * header), follows queued generations until they finish, and shows the candidates. Picking a
 * candidate stores it as a library image; in the chooser, Wagtail's own creation-form handling
 * inserts it as a chosen image; in the panel, the field's chooser widget is set to it.
 * Plain ES2017 on Wagtail's exposed Stimulus module: no build step.
 */
(() => {
  'use strict';

  if (!window.StimulusModule || !window.wagtail || !window.wagtail.app) return;

  const POLL_MS = 1500;

  class GenerateController extends window.StimulusModule.Controller {
    static values = {
      mode: { type: String, default: 'chooser' },
      generateUrl: String,
      estimateUrl: String,
      statusUrl: String,
      pickUrl: String,
      historyUrl: String,
      widget: String,
      csrf: String,
      // Translated on the server: {generating, choose, adding, set, missing, failed}.
      messages: { type: Object, default: {} },
    };

    static targets = ['estimate', 'status', 'results', 'submit', 'count', 'history', 'summary'];

    connect() {
      this.timer = null;
      this.poller = null;
    }

    disconnect() {
      clearTimeout(this.timer);
      clearTimeout(this.poller);
    }

    text(key, fallback) {
      return this.messagesValue[key] || fallback;
    }

    csrfToken() {
      if (this.csrfValue) return this.csrfValue;
      // The chooser tab has its own token; a panel uses the page editor form's.
      const input =
        this.element.querySelector('input[name="csrfmiddlewaretoken"]') ||
        document.querySelector('input[name="csrfmiddlewaretoken"]');
      return input ? input.value : '';
    }

    body() {
      const data =
        this.element.tagName === 'FORM' ? new FormData(this.element) : new FormData();
      if (this.hasCountTarget) data.set('count', this.countTarget.value);
      // The chooser does not know the page it was opened from: the editor's path tells.
      data.set('editor_path', window.location.pathname);
      return data;
    }

    async post(url, data) {
      const response = await fetch(url, {
        method: 'POST',
        body: data,
        credentials: 'same-origin',
        headers: { 'X-CSRFToken': this.csrfToken(), 'X-Requested-With': 'XMLHttpRequest' },
      });
      let json = {};
      try {
        json = await response.json();
      } catch (error) {
        json = { error: `${response.status} ${response.statusText}` };
      }
      return { ok: response.ok, json };
    }

    say(message) {
      if (this.hasStatusTarget) this.statusTarget.textContent = message;
    }

    errorOf(json) {
      if (json.error) return json.error;
      if (json.errors) {
        return Object.values(json.errors)
          .flat()
          .map((item) => item.message)
          .join(' ');
      }
      return this.text('failed', 'Something went wrong.');
    }

    estimate() {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.fetchEstimate(), 300);
    }

    async fetchEstimate() {
      if (!this.estimateUrlValue || !this.hasEstimateTarget) return;
      const { ok, json } = await this.post(this.estimateUrlValue, this.body());
      this.estimateTarget.textContent = ok ? json.display : '—';
    }

    async generate(event) {
      if (event) event.preventDefault();
      const url = this.generateUrlValue || this.element.getAttribute('action');
      this.busy(true);
      this.say(this.text('generating', 'Generating…'));
      const { ok, json } = await this.post(url, this.body());
      if (!ok) {
        this.busy(false);
        this.say(this.errorOf(json));
        return;
      }
      this.follow(json.generation);
    }

    follow(generation) {
      if (generation.finished && generation.fallback) {
        this.poll(generation.fallback);
        return;
      }
      if (!generation.finished) {
        this.say(generation.status_label);
        this.poll(generation.id);
        return;
      }
      this.busy(false);
      this.resultsTarget.innerHTML = generation.html;
      this.say(generation.error || this.text('choose', 'Choose one of the images.'));
      const first = this.resultsTarget.querySelector('button');
      if (first) first.focus();
      if (this.hasHistoryTarget) this.loadHistory();
    }

    poll(id) {
      this.poller = setTimeout(async () => {
        const data = new FormData();
        data.set('ids', String(id));
        const { ok, json } = await this.post(this.statusUrlValue, data);
        if (!ok || !json.generations.length) {
          this.busy(false);
          this.say(ok ? this.text('missing', 'The generation was not found.') : this.errorOf(json));
          return;
        }
        this.follow(json.generations[0]);
      }, POLL_MS);
    }

    busy(state) {
      this.submitTargets.forEach((button) => {
        button.disabled = state;
      });
      this.element.setAttribute('aria-busy', state ? 'true' : 'false');
    }

    async pick(event) {
      const id = String(event.params.id);
      event.currentTarget.disabled = true;
      this.say(this.text('adding', 'Adding the image to the library…'));
      if (this.modeValue === 'chooser') {
        // Wagtail's chooser posts its creation forms and inserts what they answer with.
        const form = this.element.parentElement.querySelector('[data-imagegen-pick-form]');
        form.action = this.pickUrlValue;
        let input = form.querySelector('input[name="image"]');
        if (!input) {
          input = document.createElement('input');
          input.type = 'hidden';
          input.name = 'image';
          form.appendChild(input);
        }
        input.value = id;
        form.requestSubmit();
        return;
      }
      const data = new FormData();
      data.set('image', id);
      const { ok, json } = await this.post(this.pickUrlValue, data);
      if (!ok || json.step !== 'chosen') {
        event.currentTarget.disabled = false;
        this.say(this.errorOf(json));
        return;
      }
      const chooser = document.getElementById(`${this.widgetValue}-chooser`);
      if (chooser && chooser.widget) {
        chooser.widget.setStateFromModalData(json.result);
        this.say(this.text('set', 'The image is set on the field. Save the page to keep it.'));
      }
      if (this.hasHistoryTarget) this.loadHistory();
    }

    history(event) {
      if (event.currentTarget.open && !this.historyTarget.dataset.loaded) this.loadHistory();
    }

    async loadHistory() {
      const { ok, json } = await this.post(this.historyUrlValue, new FormData());
      this.historyTarget.innerHTML = ok ? json.html : '';
      this.historyTarget.dataset.loaded = 'true';
      if (ok && this.hasSummaryTarget) this.summaryTarget.textContent = json.summary;
    }
  }

  window.wagtail.app.register('imagegen-generate', GenerateController);
})();
