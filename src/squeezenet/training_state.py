"""Where a training run stands, as ``last.pth`` keeps it for ``squeezenet train --resume``.

On disk the resume checkpoint is one plain dict, read with ``weights_only=True``:
``{"model", "spec", "optimizer", "config", "classes"}`` (written by the trainer) plus the fields of
`TrainingState` (``to_dict``). The trainer passes one `TrainingState` around instead of its fields.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from squeezenet.train import TrainConfig

__all__ = ["TrainingState", "load_resume_checkpoint"]


@dataclass
class TrainingState:
    epoch: int = 0  # the epoch (0-based) to run next, or the one a mid-epoch stop interrupted
    step: int = 0  # the first step of that epoch still to run (0 after a completed epoch)
    loss_sum: float = 0.0  # training loss summed over the epoch's images so far, all processes
    loss_count: int = 0  # ... and the number of those images
    history: list[dict] = field(default_factory=list)  # one metrics record per completed epoch
    elapsed: float = 0.0  # seconds of training and validation so far, over every resumed session
    rng_states: list[torch.Tensor] = field(default_factory=list)  # every process's RNG (dropout masks)

    def stop_mid_epoch(self, next_step: int, loss_sum: float, loss_count: int, seconds: float,
                       rng_states: list[torch.Tensor]) -> None:
        """Keep where a stopped epoch stands: the step to run next, the loss summed over its images
        so far (this session's part added to a resumed one's) and the ``seconds`` it ran."""
        self.step, self.loss_sum, self.loss_count = next_step, self.loss_sum + loss_sum, self.loss_count + loss_count
        self.elapsed += seconds
        self.rng_states = rng_states

    def end_epoch(self, record: dict, seconds: float, rng_states: list[torch.Tensor]) -> None:
        """Close the epoch that took ``seconds``: its ``record`` gets the run's seconds so far and joins
        the history, and the next epoch starts at step 0 with no loss summed yet."""
        self.elapsed += seconds
        record["seconds"] = self.elapsed
        self.history.append(record)
        self.epoch, self.step, self.loss_sum, self.loss_count = self.epoch + 1, 0, 0.0, 0
        self.rng_states = rng_states

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, checkpoint: dict) -> "TrainingState":
        """The state's fields out of a whole checkpoint dict (its other keys are ignored)."""
        return cls(**{f.name: checkpoint[f.name] for f in fields(cls)})


def load_resume_checkpoint(run_folder: Path, model: nn.Module, config: "TrainConfig") -> dict:
    """``run_folder/last.pth`` as a dict, after checking that ``config`` continues that run: the same
    architecture and spec, and the same training and validation data."""
    path = run_folder / "last.pth"
    if not path.exists():
        raise FileNotFoundError(f"nothing to resume: {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unreadable file means the same to the user
        raise ValueError(f"{path}: not a readable training checkpoint ({' '.join(str(error).split())[:120]})") from None
    if not isinstance(checkpoint, dict) or "optimizer" not in checkpoint or "config" not in checkpoint:
        raise ValueError(f"{path}: not a training checkpoint (no optimizer state)")
    missing = [f.name for f in fields(TrainingState) if f.name not in checkpoint]
    if missing:
        raise ValueError(f"{path}: not a training checkpoint (no {', '.join(missing)})")
    previous_arch = checkpoint["config"].get("arch")
    if previous_arch != config.arch or checkpoint.get("spec") != model.spec.to_dict():
        raise ValueError(f"{path} is a run of {previous_arch}, not of {config.arch} with these settings; "
                         "resume it with the same --arch or choose another --out")
    # Another training or validation set would silently change what the resumed run learns or reports.
    for option, key in (("--data", "data"), ("--val-data", "val_data"), ("--val-split", "val_split")):
        before, now = checkpoint["config"].get(key), getattr(config, key)
        if _data_setting(key, before) != _data_setting(key, now):
            raise ValueError(f"{path} was trained with {option} {_shown(before)}, not {_shown(now)}; "
                             f"resume with the same {option} or choose another --out")
    return checkpoint


def _data_setting(key: str, value):
    """A data option in comparable form: folders by their real path, an unset option as None."""
    if key == "val_split":
        return int(value or 0)
    return os.path.realpath(value) if value else None


def _shown(value) -> str:
    return "(none)" if value in (None, "") else str(value)
