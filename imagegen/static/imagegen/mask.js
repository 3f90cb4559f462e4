/* imagegen: the mask painter of the Generate widget's edit mode.
 *
 * Vanilla JavaScript, no dependencies. A <canvas> the size of the source image (in the source's
 * own pixels) lies over its preview; the editor paints white where the image should change,
 * with a brush, an eraser or a rectangle. The rectangle works from the keyboard too: the arrow
 * keys move a selection, Shift with the arrow keys resizes it, Enter adds it to the mask. The
 * mask is exported as a PNG of the source's size: white = change, black = keep.
 * window.ImagegenMask is the constructor; widget.js creates one per widget.
 */
'use strict';
(function () {
  const UNDO_LIMIT = 20;

  function MaskPainter(options) {
    this.canvas = options.canvas;
    this.selectionBox = options.selection;
    this.announce = options.announce || function () {};
    this.strings = options.strings || {};
    this.onchange = options.onchange || function () {};
    this.context = this.canvas.getContext('2d');
    this.tool = 'brush';
    this.size = 40;
    this.undoStack = [];
    this.drawing = false;
    this.last = null;
    this.start = null;
    this.selection = null;
    this.bind();
  }

  MaskPainter.prototype.reset = function (width, height) {
    this.canvas.width = width;
    this.canvas.height = height;
    this.undoStack = [];
    this.selection = null;
    this.showSelection();
  };

  /* Canvas pixels per CSS pixel: the canvas is drawn in the source's pixels, shown smaller. */
  MaskPainter.prototype.scale = function () {
    const rect = this.canvas.getBoundingClientRect();
    return rect.width ? this.canvas.width / rect.width : 1;
  };

  MaskPainter.prototype.point = function (event) {
    const rect = this.canvas.getBoundingClientRect();
    const scale = this.scale();
    return {
      x: Math.max(0, Math.min(this.canvas.width, (event.clientX - rect.left) * scale)),
      y: Math.max(0, Math.min(this.canvas.height, (event.clientY - rect.top) * scale)),
    };
  };

  MaskPainter.prototype.remember = function () {
    const { width, height } = this.canvas;
    if (!width || !height) { return; }
    this.undoStack.push(this.context.getImageData(0, 0, width, height));
    if (this.undoStack.length > UNDO_LIMIT) { this.undoStack.shift(); }
  };

  MaskPainter.prototype.stroke = function (from, to) {
    const ctx = this.context;
    ctx.save();
    ctx.globalCompositeOperation = this.tool === 'eraser' ? 'destination-out' : 'source-over';
    ctx.strokeStyle = '#fff';
    ctx.fillStyle = '#fff';
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.lineWidth = this.size * this.scale();
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x + 0.01, to.y);
    ctx.stroke();
    ctx.restore();
  };

  MaskPainter.prototype.bind = function () {
    const self = this;
    const canvas = this.canvas;
    canvas.addEventListener('pointerdown', function (event) {
      if (event.button !== 0) { return; }
      event.preventDefault();
      canvas.setPointerCapture(event.pointerId);
      self.drawing = true;
      const at = self.point(event);
      if (self.tool === 'rectangle') {
        self.start = at;
        self.select(at.x, at.y, 1, 1, false);
        return;
      }
      self.remember();
      self.last = at;
      self.stroke(at, at);
    });
    canvas.addEventListener('pointermove', function (event) {
      if (!self.drawing) { return; }
      const at = self.point(event);
      if (self.tool === 'rectangle') {
        self.select(Math.min(self.start.x, at.x), Math.min(self.start.y, at.y),
          Math.abs(at.x - self.start.x), Math.abs(at.y - self.start.y), false);
        return;
      }
      self.stroke(self.last, at);
      self.last = at;
    });
    function finish() {
      if (!self.drawing) { return; }
      self.drawing = false;
      if (self.tool === 'rectangle') {
        if (self.selection && self.selection.width > 2 && self.selection.height > 2) {
          self.fillSelection();
        }
        return;
      }
      self.onchange();
    }
    canvas.addEventListener('pointerup', finish);
    canvas.addEventListener('pointercancel', finish);
    canvas.addEventListener('keydown', function (event) { self.key(event); });
    canvas.addEventListener('focus', function () {
      if (self.tool === 'rectangle' && !self.selection) { self.defaultSelection(); }
    });
  };

  MaskPainter.prototype.setTool = function (tool) {
    this.tool = tool;
    this.canvas.dataset.tool = tool;
    if (tool === 'rectangle') {
      if (!this.selection) { this.defaultSelection(); }
    } else {
      this.selection = null;
      this.showSelection();
    }
  };

  MaskPainter.prototype.defaultSelection = function () {
    const { width, height } = this.canvas;
    if (!width || !height) { return; }
    this.select(Math.round(width / 4), Math.round(height / 4),
      Math.round(width / 2), Math.round(height / 2), true);
  };

  MaskPainter.prototype.select = function (left, top, width, height, announce) {
    const maxW = this.canvas.width;
    const maxH = this.canvas.height;
    width = Math.round(Math.max(1, Math.min(width, maxW)));
    height = Math.round(Math.max(1, Math.min(height, maxH)));
    left = Math.round(Math.max(0, Math.min(left, maxW - width)));
    top = Math.round(Math.max(0, Math.min(top, maxH - height)));
    this.selection = { left: left, top: top, width: width, height: height };
    this.showSelection();
    if (announce) {
      this.announce(format(this.strings.selection, this.selection));
    }
  };

  MaskPainter.prototype.showSelection = function () {
    const box = this.selectionBox;
    if (!box) { return; }
    const s = this.selection;
    if (!s || !this.canvas.width) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    box.style.left = (100 * s.left / this.canvas.width) + '%';
    box.style.top = (100 * s.top / this.canvas.height) + '%';
    box.style.width = (100 * s.width / this.canvas.width) + '%';
    box.style.height = (100 * s.height / this.canvas.height) + '%';
  };

  MaskPainter.prototype.fillSelection = function () {
    const s = this.selection;
    if (!s) { return; }
    this.remember();
    this.context.save();
    this.context.globalCompositeOperation = 'source-over';
    this.context.fillStyle = '#fff';
    this.context.fillRect(s.left, s.top, s.width, s.height);
    this.context.restore();
    this.announce(this.strings.selection_added);
    this.onchange();
  };

  MaskPainter.prototype.key = function (event) {
    if (this.tool !== 'rectangle') { return; }
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (event.key === 'Enter' || event.key === ' ') {
      // The change form must not be submitted: Enter belongs to the selection here.
      event.preventDefault();
      if (!this.selection) { this.defaultSelection(); }
      this.fillSelection();
      return;
    }
    const move = moves[event.key];
    if (!move) { return; }
    event.preventDefault();
    if (!this.selection) { this.defaultSelection(); }
    const s = this.selection;
    // A twentieth of the short side per press: a few presses cross the image.
    const step = Math.max(1, Math.round(Math.min(this.canvas.width, this.canvas.height) / 20));
    if (event.shiftKey) {
      this.select(s.left, s.top, s.width + move[0] * step, s.height + move[1] * step, true);
    } else {
      this.select(s.left + move[0] * step, s.top + move[1] * step, s.width, s.height, true);
    }
  };

  MaskPainter.prototype.undo = function () {
    const previous = this.undoStack.pop();
    if (!previous) {
      this.announce(this.strings.nothing_to_undo);
      return;
    }
    this.context.putImageData(previous, 0, 0);
    this.announce(this.strings.undone);
    this.onchange();
  };

  MaskPainter.prototype.clear = function () {
    this.remember();
    this.context.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.announce(this.strings.cleared);
    this.onchange();
  };

  /* Whether any pixel is painted. */
  MaskPainter.prototype.isEmpty = function () {
    const { width, height } = this.canvas;
    if (!width || !height) { return true; }
    const data = this.context.getImageData(0, 0, width, height).data;
    for (let i = 3; i < data.length; i += 4) {
      if (data[i] > 0) { return false; }
    }
    return true;
  };

  /* Resolve to the mask as a PNG Blob of the source's size (white = change), or null. */
  MaskPainter.prototype.toBlob = function () {
    const self = this;
    if (this.isEmpty()) { return Promise.resolve(null); }
    const out = document.createElement('canvas');
    out.width = this.canvas.width;
    out.height = this.canvas.height;
    const ctx = out.getContext('2d');
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, out.width, out.height);
    ctx.drawImage(self.canvas, 0, 0);
    return new Promise(function (resolve) { out.toBlob(resolve, 'image/png'); });
  };

  function format(template, values) {
    return String(template || '').replace(/%\((\w+)\)s/g, function (_, key) {
      return values[key] === undefined ? '' : String(values[key]);
    });
  }

  window.ImagegenMask = MaskPainter;
})();
