/* imagegen: the Generate button of GeneratedImageField in the Django admin.
 *
 * Vanilla JavaScript, no dependencies. Each widget ([data-imagegen-widget]) posts to its own
 * endpoints (estimate, generate, status, history) with the form's CSRF token, shows the
 * candidates of a finished generation as radio buttons, and writes the chosen image's id into
 * the hidden "<field>__imagegen_pick" input; the server sets it on the field when the editor
 * saves. Strings come translated from the server (a json_script element per widget).
 *
 * Edit mode: "What to do" picks an operation the configured providers can do (the server
 * lists them in the widget's config); the source is the current image, a candidate or a history
 * image ("Edit this image") or an uploaded photo; mask.js paints the mask over it. Edits are
 * posted, multipart, to the edit endpoint, and come back as candidates like generations.
 * Field errors are shown next to their control; Enter never submits the change form.
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
      if (list && list.length) { return list[0].message; }
    }
    return '';
  }

  /* An error of the endpoint: its message, and the field errors to show by their controls. */
  function RequestError(message, fields) {
    this.name = 'RequestError';
    this.message = message;
    this.fields = fields || null;
  }
  RequestError.prototype = Object.create(Error.prototype);

  const EDIT_INPUTS = ['operation', 'source', 'search', 'scale'];

  function Widget(root) {
    this.root = root;
    this.strings = JSON.parse(document.getElementById(root.id + '-strings').textContent);
    const config = document.getElementById(root.id + '-config');
    this.config = config ? JSON.parse(config.textContent) : { operations: {}, hints: {} };
    this.pick = root.querySelector('[data-imagegen-pick]');
    this.status = root.querySelector('[data-imagegen-status]');
    this.estimate = root.querySelector('[data-imagegen-estimate]');
    this.button = root.querySelector('[data-imagegen-generate]');
    this.candidates = root.querySelector('[data-imagegen-candidates]');
    this.tray = root.querySelector('[data-imagegen-tray]');
    this.history = root.querySelector('[data-imagegen-history]');
    this.estimateTimer = null;
    this.estimateRun = 0;
    this.busy = false;
    this.edit = root.querySelector('[data-imagegen-edit]');
    this.preview = root.querySelector('[data-imagegen-preview]');
    this.stage = root.querySelector('[data-imagegen-stage]');
    this.sourceUrl = '';
    this.sourceSize = null;
    this.objectUrl = '';
    this.objectFile = null;
    this.painter = null;
    const canvas = root.querySelector('[data-imagegen-mask]');
    if (canvas && window.ImagegenMask) {
      const status = root.querySelector('[data-imagegen-mask-status]');
      this.painter = new window.ImagegenMask({
        canvas: canvas,
        selection: root.querySelector('[data-imagegen-selection]'),
        strings: this.strings,
        announce: function (text) { status.textContent = text; },
        onchange: function () { /* the estimate does not depend on the mask */ },
      });
    }
    this.bind();
    this.bindEdit();
    this.decorateHistory();
    this.refreshEstimate();
  }

  Widget.prototype.operation = function () {
    const select = this.input('operation');
    return select ? select.value || 'generate' : 'generate';
  };

  Widget.prototype.offer = function () {
    return this.config.operations[this.operation()] || null;
  };

  Widget.prototype.input = function (name) {
    return this.root.querySelector('[data-imagegen-input="' + name + '"]');
  };

  Widget.prototype.csrfToken = function () {
    const form = this.root.closest('form');
    const field = (form && form.querySelector('input[name="csrfmiddlewaretoken"]')) ||
      document.querySelector('input[name="csrfmiddlewaretoken"]');
    return field ? field.value : '';
  };

  /* The request as a FormData; with ``withMask`` the painted mask too (a PNG, asynchronously). */
  Widget.prototype.request = async function (withMask) {
    const data = new FormData();
    for (const name of ['prompt', 'preset', 'provider', 'count']) {
      const element = this.input(name);
      if (element) { data.append(name, element.value); }
    }
    const offer = this.offer();
    if (!offer) { return data; }
    for (const name of EDIT_INPUTS) {
      const element = this.input(name);
      if (element) { data.append(name, element.value); }
    }
    const upload = this.input('upload');
    if (this.input('source').value === 'upload' && upload && upload.files.length) {
      data.append('upload', upload.files[0]);
    }
    const reference = this.input('reference');
    if (offer.reference && reference && reference.files.length) {
      data.append('reference', reference.files[0]);
    }
    if (withMask && offer.mask && this.painter) {
      const mask = await this.painter.toBlob();
      if (mask) { data.append('mask', mask, 'mask.png'); }
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
      throw new RequestError(body.error || firstError(body.errors) || response.statusText,
        body.errors);
    }
    return body;
  };

  Widget.prototype.say = function (text) {
    this.status.textContent = text;
  };

  /* Show each field error next to its control; return whether any had a place to go. */
  Widget.prototype.showErrors = function (fields) {
    this.clearErrors();
    let placed = false;
    for (const name of Object.keys(fields || {})) {
      const slot = this.root.querySelector('[data-imagegen-error="' + name + '"]');
      const list = fields[name];
      if (!slot || !list || !list.length || slot.parentElement.closest('[hidden]')) {
        continue;
      }
      slot.textContent = list[0].message;
      slot.hidden = false;
      const control = this.input(name);
      if (control) {
        control.setAttribute('aria-invalid', 'true');
        const described = (control.getAttribute('aria-describedby') || '').split(' ')
          .filter(Boolean);
        if (!described.includes(slot.id)) { described.push(slot.id); }
        control.setAttribute('aria-describedby', described.join(' '));
      }
      placed = true;
    }
    return placed;
  };

  Widget.prototype.clearErrors = function () {
    for (const slot of this.root.querySelectorAll('[data-imagegen-error]')) {
      slot.hidden = true;
      slot.textContent = '';
      const control = this.input(slot.dataset.imagegenError);
      if (control) {
        control.removeAttribute('aria-invalid');
        const described = (control.getAttribute('aria-describedby') || '').split(' ')
          .filter(function (id) { return id && id !== slot.id; });
        if (described.length) {
          control.setAttribute('aria-describedby', described.join(' '));
        } else {
          control.removeAttribute('aria-describedby');
        }
      }
    }
  };

  Widget.prototype.bind = function () {
    const self = this;
    this.button.addEventListener('click', function () { self.generate(); });
    // Enter in a control of the box would submit the whole change form (implicit submission).
    // It never does: on a button it presses the button, in the prompt it is a new line.
    this.root.querySelector('fieldset.imagegen-generate').addEventListener('keydown',
      function (event) {
        if (event.key !== 'Enter' || event.defaultPrevented) { return; }
        const target = event.target;
        if (target.tagName === 'TEXTAREA' || target.tagName === 'BUTTON' || target.type === 'file') {
          return;
        }
        event.preventDefault();
      });
    for (const name of ['prompt', 'preset', 'provider', 'count']) {
      const element = this.input(name);
      if (element) {
        element.addEventListener('input', function () { self.refreshEstimate(); });
        element.addEventListener('change', function () { self.refreshEstimate(); });
      }
    }
    this.tray.addEventListener('click', function (event) {
      const edit = event.target.closest('[data-imagegen-edit-image]');
      if (edit) { self.editImage(edit.dataset); }
    });
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
      const edit = event.target.closest('[data-imagegen-edit-image]');
      if (edit) {
        self.editImage(edit.dataset);
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
      const run = ++self.estimateRun;
      if (self.offer() && !self.hasSource()) {
        self.estimate.textContent = '';
        return;
      }
      try {
        const body = await self.post(self.root.dataset.estimateUrl, await self.request(false));
        if (run !== self.estimateRun) { return; }  // a later estimate is on its way
        self.clearErrors();
        self.estimate.textContent = format(self.strings.estimate, { cost: body.display });
      } catch (err) {
        if (run !== self.estimateRun) { return; }
        const placed = err.fields && self.showErrors(err.fields);
        self.estimate.textContent = placed ? '' : err.message;
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
    this.clearErrors();
    this.clearCandidates();
    const editing = Boolean(this.offer());
    this.say(editing ? this.strings.editing : this.strings.generating);
    try {
      const url = editing ? this.root.dataset.editUrl : this.root.dataset.generateUrl;
      const body = await this.post(url, await this.request(true));
      await this.follow(body.generation);
    } catch (err) {
      if (err.fields && this.showErrors(err.fields)) {
        this.say(format(this.strings.check, { error: err.message }));
      } else if (err instanceof RequestError) {
        this.say(err.message);  // the server's own words: what was wrong and what to do
      } else {
        this.say(format(this.strings.error, { error: err.message }));
      }
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

  /* Take away the last run's candidates; a pick among them goes with them. */
  Widget.prototype.clearCandidates = function () {
    const ids = Array.from(this.tray.querySelectorAll('input[type="radio"]'))
      .map(function (radio) { return radio.value; }).filter(Boolean);
    if (this.pick.value && ids.includes(this.pick.value)) { this.pick.value = ''; }
    this.tray.replaceChildren();
    this.candidates.hidden = true;
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
        if (Object.keys(self.config.operations).length) {
          const card = document.createElement('div');
          card.className = 'imagegen-candidate-card';
          card.append(label, self.editButton(option.image,
            format(self.strings.candidate_source, { number: option.number })));
          self.tray.append(card);
          continue;
        }
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

  /* An "Edit this image" button for ``image`` (id, url, width, height), named by ``name``. */
  Widget.prototype.editButton = function (image, name) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'button imagegen-edit-button';
    button.dataset.imagegenEditImage = String(image.id);
    button.dataset.url = image.url;
    button.dataset.width = String(image.width || '');
    button.dataset.height = String(image.height || '');
    button.dataset.name = name;
    button.textContent = this.strings.edit_image;
    const hidden = document.createElement('span');
    hidden.className = 'visually-hidden';
    hidden.textContent = ' (' + name + ')';
    button.append(hidden);
    return button;
  };

  /* Give each image of the history panel an "Edit this image" button. */
  Widget.prototype.decorateHistory = function () {
    if (!Object.keys(this.config.operations).length) { return; }
    for (const figure of this.history.querySelectorAll('figure[data-image]')) {
      const caption = figure.querySelector('figcaption') || figure;
      if (caption.querySelector('[data-imagegen-edit-image]')) { continue; }
      const img = figure.querySelector('img');
      const id = figure.dataset.image;
      caption.append(this.editButton({
        id: id,
        url: img ? img.currentSrc || img.src : '',
        width: img ? img.getAttribute('width') : '',
        height: img ? img.getAttribute('height') : '',
      }, format(this.strings.history_source, { id: id })));
    }
  };

  Widget.prototype.refreshHistory = async function () {
    try {
      const body = await this.post(this.root.dataset.historyUrl, new FormData());
      this.history.innerHTML = body.html;
      this.decorateHistory();
      if (this.pick.value) { this.choose(this.pick.value, this.status.textContent); }
    } catch (err) {
      // The history is a convenience; the candidates and the status line already show the result.
    }
  };

  // Edit mode ------------------------------------------------------------------------------

  Widget.prototype.bindEdit = function () {
    const self = this;
    const operation = this.input('operation');
    if (!operation || !this.edit) { return; }
    const refresh = function () { self.refreshEstimate(); };
    operation.addEventListener('change', function () { self.showOperation(); refresh(); });
    this.input('source').addEventListener('change', function () { self.sourceChanged(); });
    this.input('upload').addEventListener('change', function () { self.sourceChanged(); });
    for (const name of ['search', 'scale', 'reference']) {
      const element = this.input(name);
      element.addEventListener('change', refresh);
      element.addEventListener('input', refresh);
    }
    for (const radio of this.root.querySelectorAll('[data-imagegen-tool]')) {
      radio.addEventListener('change', function () {
        if (!radio.checked || !self.painter) { return; }
        self.painter.setTool(radio.value);
        self.root.querySelector('[data-imagegen-mask-status]').textContent =
          self.strings['tool_' + radio.value] || '';
      });
    }
    const size = this.root.querySelector('[data-imagegen-brush-size]');
    size.addEventListener('input', function () {
      if (self.painter) { self.painter.size = Number(size.value); }
    });
    this.root.querySelector('[data-imagegen-undo]').addEventListener('click', function () {
      if (self.painter) { self.painter.undo(); }
    });
    this.root.querySelector('[data-imagegen-clear]').addEventListener('click', function () {
      if (self.painter) { self.painter.clear(); }
    });
    this.preview.addEventListener('load', function () { self.previewLoaded(); });
    this.preview.addEventListener('error', function () {
      if (!self.preview.getAttribute('src')) { return; }
      self.stage.hidden = true;
      self.showErrors({ upload: [{ message: self.strings.bad_upload }] });
    });
    this.showOperation();
  };

  Widget.prototype.showOperation = function () {
    const offer = this.offer();
    this.edit.hidden = !offer;
    const parts = { upload: false, mask: false, search: false, scale: false, reference: false };
    if (offer) {
      parts.upload = this.input('source').value === 'upload';
      parts.mask = offer.mask;
      parts.search = offer.search;
      parts.scale = offer.scale;
      parts.reference = offer.reference;
    }
    for (const name of Object.keys(parts)) {
      const part = this.root.querySelector('[data-imagegen-part="' + name + '"]');
      if (part) { part.hidden = !parts[name]; }
    }
    const help = this.root.querySelector('[data-imagegen-help="prompt"]');
    const hint = this.config.hints[this.operation()];
    if (help && hint) { help.textContent = hint; }
    if (offer) { this.sourceChanged(); } else { this.clearErrors(); }
  };

  Widget.prototype.hasSource = function () {
    const source = this.input('source');
    if (!source) { return false; }
    if (source.value === 'upload') {
      const upload = this.input('upload');
      return Boolean(upload && upload.files.length);
    }
    return true;
  };

  /* Show the chosen source under the mask painter. */
  Widget.prototype.sourceChanged = function () {
    const source = this.input('source');
    const upload = this.input('upload');
    const uploadPart = this.root.querySelector('[data-imagegen-part="upload"]');
    uploadPart.hidden = source.value !== 'upload';
    const file = upload.files.length ? upload.files[0] : null;
    if (this.objectUrl && (source.value !== 'upload' || file !== this.objectFile)) {
      URL.revokeObjectURL(this.objectUrl);
      this.objectUrl = '';
      this.objectFile = null;
    }
    let url = '';
    let size = null;
    if (source.value === 'current') {
      const current = this.root.querySelector('img.imagegen-current');
      url = current ? current.getAttribute('src') : '';
    } else if (source.value === 'upload') {
      // The same file keeps its URL, so switching the operation keeps the painted mask.
      if (file && !this.objectUrl) {
        this.objectUrl = URL.createObjectURL(file);
        this.objectFile = file;
      }
      url = this.objectUrl;
    } else {
      const option = source.options[source.selectedIndex];
      url = option.dataset.url || '';
      if (option.dataset.width && option.dataset.height) {
        size = { width: Number(option.dataset.width), height: Number(option.dataset.height) };
      }
    }
    this.sourceSize = size;
    if (url && url !== this.sourceUrl) {
      this.sourceUrl = url;
      this.preview.src = url;
    } else if (!url) {
      this.sourceUrl = '';
      this.preview.removeAttribute('src');
    }
    this.stage.hidden = !url;
    this.refreshEstimate();
  };

  Widget.prototype.previewLoaded = function () {
    if (!this.painter) { return; }
    // The mask is the source's size: a thumbnail's attributes say it, else the image itself.
    const size = this.sourceSize ||
      { width: this.preview.naturalWidth, height: this.preview.naturalHeight };
    this.painter.reset(size.width, size.height);
    this.painter.canvas.hidden = false;
    this.painter.setTool(this.painter.tool);
  };

  /* Start editing a candidate or a history image (the data of its "Edit this image" button). */
  Widget.prototype.editImage = function (data) {
    const source = this.input('source');
    const operation = this.input('operation');
    if (!source || !operation) { return; }
    let option = Array.from(source.options).find(function (o) {
      return o.value === data.imagegenEditImage;
    });
    if (!option) {
      option = document.createElement('option');
      option.value = data.imagegenEditImage;
      source.append(option);
    }
    option.textContent = data.name;
    option.dataset.url = data.url;
    option.dataset.width = data.width;
    option.dataset.height = data.height;
    source.value = option.value;
    if (operation.value === 'generate') {
      const first = this.config.operations.edit ? 'edit' : Object.keys(this.config.operations)[0];
      operation.value = first;
    }
    this.showOperation();
    operation.focus();
    this.edit.scrollIntoView({ block: 'nearest' });
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
