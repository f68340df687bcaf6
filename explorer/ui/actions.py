"""Every menu command and shortcut of the window, declared in one table."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ActionSpec:
    name: str  # the MainWindow method "on_<name>" runs it, unless `calls` is given
    text: str  # menu text, & marks the mnemonic
    shortcut: str | None  # QKeySequence text
    menu: str  # "File", "Model", "View", "Help"
    toolbar: bool = False  # also on the toolbar
    tip: str = ""
    calls: tuple = ()  # a Session method and its arguments that run it directly
    more_shortcuts: tuple[str, ...] = ()  # further keys, e.g. ones a text box does not take


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec(
        "load_weights",
        "&Load weights…",
        "Ctrl+O",
        "File",
        tip="Load GPT-2 weights: .safetensors, .pth, a Hugging Face folder or a model id",
    ),
    ActionSpec(
        "random_weights",
        "Use &random weights",
        None,
        "File",
        tip="Go back to the seeded random GPT-2 124M",
    ),
    ActionSpec(
        "export",
        "&Export…",
        "Ctrl+E",
        "File",
        True,
        tip="Export the selected head's heatmap, the layer's grid or the whole trace",
    ),
    ActionSpec("save_trace", "Save &trace (.npz)…", "Ctrl+Shift+S", "File"),
    ActionSpec("quit", "&Quit", "Ctrl+Q", "File"),
    ActionSpec("run", "&Run", "Ctrl+Return", "Model", True, "Run the prompt (Ctrl+Enter)"),
    ActionSpec(
        "backward",
        "&Backward step",
        "Ctrl+B",
        "Model",
        True,
        "One backward pass from the loss to the embeddings",
    ),
    ActionSpec(
        "generate",
        "&Generate next token",
        "Ctrl+G",
        "Model",
        True,
        "Append the predicted next token and run again",
        calls=("generate_next",),
    ),
    ActionSpec(
        "undo_generate",
        "&Undo generated token",
        "Ctrl+Shift+G",
        "Model",
        True,
        "Remove the last generated token",
        calls=("undo_generation",),
    ),
    ActionSpec(
        "restore_all",
        "Switch &all on",
        "Ctrl+Shift+R",
        "Model",
        True,
        "Every head, block and SAE feature back on (Ctrl+Shift+R)",
        calls=("restore_all",),
    ),
    ActionSpec(
        "sparse_autoencoder",
        "&Sparse autoencoder…",
        None,
        "Model",
        tip="Load a sparse autoencoder (SAE): its features show in the Features tab",
    ),
    ActionSpec(
        "previous",
        "&Previous stage",
        "Left",
        "View",
        True,
        "Previous stage (←, or Alt+← anywhere)",
        calls=("previous_section",),
        more_shortcuts=("Alt+Left",),
    ),
    ActionSpec(
        "next",
        "&Next stage",
        "Right",
        "View",
        True,
        "Next stage (→, or Alt+→ anywhere)",
        calls=("next_section",),
        more_shortcuts=("Alt+Right",),
    ),
    ActionSpec(
        "previous_block",
        "Previous &block",
        "PgUp",
        "View",
        False,
        "The same stage one block earlier (PgUp)",
        calls=("move_layer", -1),
    ),
    ActionSpec(
        "next_block",
        "Next b&lock",
        "PgDown",
        "View",
        False,
        "The same stage one block later (PgDn)",
        calls=("move_layer", +1),
    ),
    ActionSpec(
        "tour",
        "&Tour",
        "F1",
        "Help",
        tip="A guided walk through the model on this prompt's numbers, step by step (F1)",
        calls=("open_tour",),
    ),
)
