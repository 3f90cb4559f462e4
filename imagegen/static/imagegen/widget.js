/* imagegen: the Generate button of GeneratedImageField in the Django admin.
 *
 * Vanilla JavaScript, no dependencies. Each widget ([data-imagegen-widget]) posts to its own
 * endpoints (estimate, generate, status, history) with the form's CSRF token, shows the
 * candidates of a finished generation as radio buttons, and writes the chosen image's id into
 * the hidden "<field>__imagegen_pick" input; the server sets it on the field when the editor
 * saves. Strings come translated from the server (a json_script element per widget).
 */
'use strict';
(function () {
  const POLL_FIRST = 1000;
  const POLL_MAX = 5000;

  function format(template, values) {
    return String(template).replace(/%\((\w+)\)s/g, function (_, key) {
      return values[key] === undefined ? '' : String(values[key]);
    });
  }

  function sleep(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  function firstError(errors) {
    if (!errors) { return ''; }
    for (const key of Object.keys(errors)) {
      const list = errors[key];
      if (list && list.length) { return (key === '__all__' ? '' : key + ': ') + list[0].message; }
    }
    return '';
  }

  function Widget(root) {
    this.root = root;
    this.strings = JSON.parse(document.getElementById(root.id + '-strings').textContent);
    this.pick = root.querySelector('[data-imagegen-pick]');
    this.status = root.querySelector('[data-imagegen-status]');
    this.estimate = root.querySelector('[data-imagegen-estimate]');
    this.button = root.querySelector('[data-imagegen-generate]');
    this.candidates = root.querySelector('[data-imagegen-candidates]');
    this.tray = root.querySelector('[data-imagegen-tray]');
    this.history = root.querySelector('[data-imagegen-history]');
    this.estimateTimer = null;
    this.busy = false;
    this.bind();
    this.refreshEstimate();
  }

  Widget.prototype.input = function (name) {
    return this.root.querySelector('[data-imagegen-input="' + name + '"]');
  };

  Widget.prototype.csrfToken = function () {
    const form = this.root.closest('form');
    const field = (form && form.querySelector('input[name="csrfmiddlewaretoken"]')) ||
      document.querySelector('input[name="csrfmiddlewaretoken"]');
    return field ? field.value : '';
  };

  Widget.prototype.request = function () {
    const data = new FormData();
    for (const name of ['prompt', 'preset', 'provider', 'count']) {
      const element = this.input(name);
      if (element) { data.append(name, element.value); }
    }
    return data;
  };

  Widget.prototype.post = async function (url, data) {
    const token = this.csrfToken();
    data.append('csrfmiddlewaretoken', token);
    const response = await fetch(url, {
      method: 'POST',
      body: data,
      credentials: 'same-origin',
      headers: { 'X-CSRFToken': token, 'Accept': 'application/json' },
    });
    let body = {};
    try { body = await response.json(); } catch (err) { body = {}; }
    if (!response.ok) {
      throw new Error(body.error || firstError(body.errors) || response.statusText);
    }
    return body;
  };

  Widget.prototype.say = function (text) {
    this.status.textContent = text;
  };

  Widget.prototype.bind = function () {
    const self = this;
    this.button.addEventListener('click', function () { self.generate(); });
    for (const name of ['prompt', 'preset', 'provider', 'count']) {
      const element = this.input(name);
      if (element) {
        element.addEventListener('input', function () { self.refreshEstimate(); });
        element.addEventListener('change', function () { self.refreshEstimate(); });
      }
    }
    this.tray.addEventListener('change', function (event) {
      if (event.target.type !== 'radio') { return; }
      self.choose(event.target.value, event.target.value ?
        format(self.strings.picked, { number: event.target.dataset.number }) : '');
    });
    this.history.addEventListener('click', function (event) {
      const use = event.target.closest('[data-imagegen-use]');
      if (use) {
        for (const radio of self.tray.querySelectorAll('input[type="radio"]')) {
          radio.checked = radio.value === '';
        }
        self.choose(use.dataset.imagegenUse, self.strings.reverted);
        return;
      }
      const again = event.target.closest('[data-imagegen-regenerate]');
      if (again) { self.regenerate(again.dataset); }
    });
  };

  Widget.prototype.choose = function (imageId, message) {
    this.pick.value = imageId;
    for (const figure of this.history.querySelectorAll('[data-image]')) {
      figure.classList.toggle('is-chosen', figure.dataset.image === imageId);
    }
    this.say(message);
  };

  Widget.prototype.refreshEstimate = function () {
    const self = this;
    clearTimeout(this.estimateTimer);
    this.estimateTimer = setTimeout(async function () {
      try {
        const body = await self.post(self.root.dataset.estimateUrl, self.request());
        self.estimate.textContent = format(self.strings.estimate, { cost: body.display });
      } catch (err) {
        self.estimate.textContent = err.message;
      }
    }, 250);
  };

  Widget.prototype.regenerate = function (data) {
    const fields = { prompt: data.prompt, preset: data.preset, provider: data.provider, count: data.count };
    for (const name of Object.keys(fields)) {
      const element = this.input(name);
      if (!element || fields[name] === undefined) { continue; }
      if (element.tagName === 'SELECT' &&
          !Array.from(element.options).some(function (o) { return o.value === fields[name]; })) {
        continue;
      }
      element.value = fields[name];
    }
    this.input('prompt').focus();
    this.generate();
  };

  Widget.prototype.generate = async function () {
    if (this.busy) { return; }
    // aria-disabled rather than disabled: a disabled button loses the focus, and a keyboard
    // user would be sent back to the top of the page.
    this.busy = true;
    this.button.setAttribute('aria-disabled', 'true');
    this.root.setAttribute('aria-busy', 'true');
    this.say(this.strings.generating);
    try {
      const body = await this.post(this.root.dataset.generateUrl, this.request());
      await this.follow(body.generation);
    } catch (err) {
      this.say(format(this.strings.error, { error: err.message }));
    } finally {
      this.busy = false;
      this.button.removeAttribute('aria-disabled');
      this.root.removeAttribute('aria-busy');
    }
  };

  Widget.prototype.follow = async function (generation) {
    let delay = POLL_FIRST;
    while (!generation.finished || generation.fallback) {
      if (generation.finished) {
        // It failed over to the preset's next provider: follow that generation instead.
        generation = { id: generation.fallback, status: 'queued', finished: false };
      }
      this.say(this.strings[generation.status] || this.strings.generating);
      await sleep(delay);
      delay = Math.min(delay * 1.5, POLL_MAX);
      const data = new FormData();
      data.append('ids', String(generation.id));
      const body = await this.post(this.root.dataset.statusUrl, data);
      if (!body.generations.length) { throw new Error(this.strings.gone); }
      generation = body.generations[0];
    }
    if (generation.status === 'succeeded') {
      this.showCandidates(generation);
      const cost = generation.cost ? ' ' + format(this.strings.cost, { cost: generation.cost }) : '';
      this.say(this.strings.done + cost);
    } else {
      this.say(format(this.strings.failed, { error: generation.error || generation.status_label }));
    }
    await this.refreshHistory();
  };

  Widget.prototype.showCandidates = function (generation) {
    const name = this.root.id + '-candidate';
    const current = this.root.querySelector('img.imagegen-current');
    // "Keep the current image" makes no sense on an empty field (keep_empty, when translated).
    const keep = current ? this.strings.keep : (this.strings.keep_empty || this.strings.keep);
    const options = [{ id: '', label: keep }].concat(
      generation.images.map(function (image, index) {
        return { id: String(image.id), image: image, number: index + 1 };
      }));
    const self = this;
    this.tray.replaceChildren();
    for (const option of options) {
      const label = document.createElement('label');
      label.className = 'imagegen-candidate';
      const radio = document.createElement('input');
      radio.type = 'radio';
      radio.name = name;
      radio.value = option.id;
      radio.checked = option.id === '' && !this.pick.value;
      if (option.image) {
        radio.dataset.number = String(option.number);
        const img = document.createElement('img');
        img.src = option.image.thumbnail;
        img.alt = option.image.alt;
        img.width = option.image.width;
        img.height = option.image.height;
        img.className = 'imagegen-thumb imagegen-thumb--large';
        const caption = document.createElement('span');
        caption.id = name + '-' + option.id;
        caption.textContent = format(self.strings.candidate, { number: option.number });
        // Named by its caption alone: the image's alt text (the prompt, the same for every
        // candidate) would make each name long and alike.
        radio.setAttribute('aria-labelledby', caption.id);
        label.append(radio, img, caption);
      } else {
        if (current) {
          // The field's image, for comparison; the caption says what it is.
          const img = document.createElement('img');
          img.src = current.currentSrc || current.src;
          img.alt = '';
          img.className = 'imagegen-thumb imagegen-thumb--large';
          label.append(img);
        }
        const caption = document.createElement('span');
        caption.textContent = option.label;
        label.prepend(radio);
        label.append(caption);
      }
      this.tray.append(label);
    }
    this.candidates.hidden = false;
  };

  Widget.prototype.refreshHistory = async function () {
    try {
      const body = await this.post(this.root.dataset.historyUrl, new FormData());
      this.history.innerHTML = body.html;
      if (this.pick.value) { this.choose(this.pick.value, this.status.textContent); }
    } catch (err) {
      // The history is a convenience; the candidates and the status line already show the result.
    }
  };

  function start(scope) {
    for (const root of scope.querySelectorAll('[data-imagegen-widget]')) {
      if (root.dataset.imagegenReady) { continue; }
      root.dataset.imagegenReady = '1';
      new Widget(root);
    }
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', function () { start(document); });
  } else {
    start(document);
  }
  document.addEventListener('formset:added', function (event) { start(event.target); });
})();
