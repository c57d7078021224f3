"""Where a tensor lives in the byte-addressed activation SRAM.

An image batch [B, H, W, C] is B *canvases*, one after the other: the image with a border of
``pads`` (top, left, bottom, right) pixels, each pixel ``pixel`` bytes (C, or C rounded up to
the core's window alignment), rows of ``(pl + W + pr)`` pixels. The border holds ``pad_value``
(the zero point for a convolution's padding, -128 for a max pool's): the program writes it
with FILL before the tensor's producer writes the inside. A transposed canvas (only ever the
model's input) stores columns instead of rows: x outer, y inner.

A vector batch [B, F] is B rows of ``pixel`` bytes (F rounded up likewise).
"""

from dataclasses import dataclass

from sim.programs import ceil_div

__all__ = ["Layout", "round_up"]


def round_up(value, multiple):
    return ceil_div(value, multiple) * multiple


@dataclass
class Layout:
    """The placement of one tensor: ``shape`` is (H, W, C) or (F,); ``batch`` images."""
    shape: tuple
    batch: int
    align: int = 1
    pads: tuple = (0, 0, 0, 0)
    pad_value: int = None
    transposed: bool = False
    base: int = 0

    @property
    def image(self):
        return len(self.shape) == 3

    @property
    def channels(self):
        return self.shape[-1]

    @property
    def pixel(self):
        """Bytes per pixel (images) or per sample (vectors)."""
        return round_up(self.shape[-1], self.align)

    @property
    def canvas(self):
        """(rows, columns) of the canvas, the border included."""
        t, left, b, r = self.pads
        return self.shape[0] + t + b, self.shape[1] + left + r

    @property
    def x_step(self):
        """Bytes from a pixel to the one on its right."""
        return self.pixel * (self.canvas[0] if self.transposed else 1)

    @property
    def y_step(self):
        """Bytes from a pixel to the one below it."""
        return self.pixel * (1 if self.transposed else self.canvas[1])

    @property
    def image_bytes(self):
        if not self.image:
            return self.pixel
        rows, cols = self.canvas
        return rows * cols * self.pixel

    @property
    def bytes(self):
        return self.batch * self.image_bytes

    def pixel_addr(self, b, y=0, x=0):
        """Byte address of interior pixel (y, x) of image ``b`` (may be negative coordinates,
        into the border)."""
        if not self.image:
            return self.base + b * self.image_bytes
        t, left, _, _ = self.pads
        return (self.base + b * self.image_bytes + (y + t) * self.y_step
                + (x + left) * self.x_step)

    def border_segments(self, b):
        """(address, length) byte ranges of image ``b``'s border, in address order."""
        if not self.image or not any(self.pads):
            return []
        rows, cols = self.canvas
        h, w, _ = self.shape
        t, left, bottom, r = self.pads
        start = self.base + b * self.image_bytes
        end = start + self.image_bytes
        if self.transposed:
            lines, inner, lo, hi, first_pad, last_pad = cols, rows, t, bottom, left, r
            n_inner = w
            inner_len = h
        else:
            lines, inner, lo, hi, first_pad, last_pad = rows, cols, left, r, t, bottom
            n_inner = h
            inner_len = w
        line = inner * self.pixel
        segments = []
        # Before the first inside pixel: the leading lines and the first line's low border.
        first_inside = start + first_pad * line + lo * self.pixel
        if first_inside > start:
            segments.append((start, first_inside - start))
        # Between the lines: one line's high border and the next one's low border.
        for k in range(n_inner - 1):
            gap_start = start + (first_pad + k) * line + (lo + inner_len) * self.pixel
            gap = (hi + lo) * self.pixel
            if gap:
                segments.append((gap_start, gap))
        last_inside_end = start + (first_pad + n_inner - 1) * line + (lo + inner_len) * \
            self.pixel
        if end > last_inside_end:
            segments.append((last_inside_end, end - last_inside_end))
        assert lines == first_pad + n_inner + last_pad
        return segments
