"""``smfd serve``: a local Gradio page to deblur a photo (thin: all the work is in smfd.infer)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .data.io import write_image
from .infer.photo_io import read_photo
from .infer.pipeline import FaceDeblurrer, NoFaceError
from .report.palette import colorize_mask

KEEP_CHOICES = ["hair", "wearables", "background"]


def make_handler(pipe: FaceDeblurrer, max_upload_mb: float, out_dir: Path):
    """The function behind the Deblur button: (file, aligned, keep) -> (input, mask, output, download, status)."""
    import gradio as gr

    def deblur(path: str | None, aligned: bool, keep: list[str]):
        if not path:
            raise gr.Error("Upload a photo first.")
        size_mb = os.path.getsize(path) / 1e6
        if size_mb > max_upload_mb:
            raise gr.Error(f"The file is {size_mb:.1f} MB; the limit is {max_upload_mb:g} MB.")
        name = Path(path).name
        try:
            image = read_photo(path)
        except (OSError, ValueError) as e:
            raise gr.Error(f"{name}: {str(e).split(': ', 1)[-1]}") from None
        try:
            result = pipe.deblur(image, aligned=aligned, keep=keep or ())
        except NoFaceError as e:
            raise gr.Error(f"{name}: {e}. Tick 'aligned face crop' for a face crop.") from None
        except RuntimeError as e:  # e.g. face detection not installed
            raise gr.Error(str(e)) from None
        fd, out_path = tempfile.mkstemp(suffix=f"_{Path(name).stem}_deblurred.png", dir=out_dir)
        os.close(fd)
        write_image(out_path, result.image)
        restored = [f for f in result.faces if not f.skipped]
        status = "Restored the face crop." if aligned else f"Restored {len(restored)} face(s)."
        skipped = [f.skipped for f in result.faces if f.skipped]
        if skipped:
            status += f" Skipped {len(skipped)}: {skipped[0]}."
        return image, colorize_mask(result.mask), result.image, out_path, status

    return deblur


def build_app(pipe: FaceDeblurrer, *, max_upload_mb: float = 20.0):
    """The Gradio Blocks app: upload, options, input | mask | output, download."""
    import gradio as gr

    out_dir = Path(tempfile.mkdtemp(prefix="smfd-serve-"))
    card = pipe.manifest.get("card", {})
    with gr.Blocks(title="smfd face deblurring") as app:
        gr.Markdown("# smfd: face deblurring guided by semantic face masks\n"
                    "Upload a blurry photo: every face is found, restored and blended back. Runs offline on this "
                    f"machine. {card.get('status', '')}")
        with gr.Row():
            upload = gr.File(label="Photo (JPEG, PNG, ...)", file_types=["image"], type="filepath",
                             elem_id="upload")
            with gr.Column():
                aligned = gr.Checkbox(label="Aligned face crop (like the training faces)", value=False,
                                      elem_id="aligned")
                keep = gr.CheckboxGroup(KEEP_CHOICES, label="Keep these regions from the input", elem_id="keep")
                button = gr.Button("Deblur", variant="primary", elem_id="deblur")
                status = gr.Markdown(elem_id="status")
        with gr.Row():
            shown_in = gr.Image(label="Input", type="numpy", interactive=False, elem_id="input-image")
            shown_mask = gr.Image(label="Face mask", type="numpy", interactive=False, elem_id="mask-image")
            shown_out = gr.Image(label="Output", type="numpy", format="png", interactive=False, elem_id="output-image")
        download = gr.File(label="Download the result", elem_id="download")
        button.click(make_handler(pipe, max_upload_mb, out_dir), [upload, aligned, keep],
                     [shown_in, shown_mask, shown_out, download, status], concurrency_limit=1)
    app.queue(max_size=32, default_concurrency_limit=1)  # one model run at a time; others wait in line
    return app


def serve(pipe: FaceDeblurrer, *, host: str = "127.0.0.1", port: int = 7860, max_upload_mb: float = 20.0,
          block: bool = True):
    """Start the app; with ``block=False`` returns the running app (tests)."""
    app = build_app(pipe, max_upload_mb=max_upload_mb)
    app.launch(server_name=host, server_port=port, max_file_size=f"{max_upload_mb:g}mb", prevent_thread_lock=not block,
               show_error=True, share=False, quiet=True)  # quiet: no "set share=True" hint; the CLI prints the URL
    return app


__all__ = ["build_app", "make_handler", "serve"]
