"""What one training step is made of: the model at the start, the optimizer, the learning rate
of each step, the batch's inputs and augmentation, and the seeded random streams.

Every random choice comes from ``stream_seed(seed, epoch, batch)``: the same seed gives the
same weights, and a resumed run draws exactly what the stopped one would have drawn.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..data import normalize
from ..errors import CheckpointError, ParameterError
from ..models.registry import ModelSpec
from .config import TrainConfig
from .device import Precision

# Smallest crop side (a fraction of the image's) of the random-crop augmentation, per dataset.
# PACS (227 px): objects fill the frame very differently across photos, paintings, cartoons and
# sketches, so crops of 60-100% of the side resized back teach scale invariance. CIFAR-10 (32 px):
# resizing a crop of so few pixels mostly blurs it, so 1.0 selects the standard 4-pixel padded shift.
MIN_CROP_SCALE = {"pacs": 0.6, "cifar10": 1.0}

# stream_seed is a mixed-radix number (seed, epoch, batch): distinct for every epoch below
# EPOCH_RADIX and batch below BATCH_RADIX. The values are those earlier runs used for their batches.
EPOCH_RADIX = 1_000_003
BATCH_RADIX = 100_003
SHUFFLE = BATCH_RADIX - 1  # the "batch" whose stream orders an epoch's images: no real batch reaches it


def stream_seed(seed: int, epoch: int, batch: int) -> int:
    """The seed of one random stream of a run: the draws of batch ``batch`` of epoch ``epoch``
    (augmentation, dropout), or, for ``batch == SHUFFLE``, the epoch's order of the images.

    Raises:
        ValueError: an epoch or batch index outside the range that keeps the streams distinct.
    """
    if not (0 <= epoch < EPOCH_RADIX and 0 <= batch < BATCH_RADIX):
        raise ParameterError(
            f"epoch {epoch} / batch {batch}: at most {EPOCH_RADIX} epochs of "
            f"{BATCH_RADIX - 1} batches have distinct random streams"
        )
    return (seed * EPOCH_RADIX + epoch) * BATCH_RADIX + batch


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The order in which epoch ``epoch`` visits the ``n`` training images (a permutation)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(stream_seed(seed, epoch, SHUFFLE)))


def batch_generator(seed: int, epoch: int, batch: int) -> torch.Generator:
    """The generator of one batch's augmentation; it also seeds torch's global generator, which
    dropout draws from."""
    s = stream_seed(seed, epoch, batch)
    torch.manual_seed(s)
    return torch.Generator().manual_seed(s)


def learning_rate(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """The learning rate of ``step`` (0-based) of ``total_steps`` under ``cfg.schedule``.

    Raises:
        ValueError: an unknown schedule.
    """
    t = min(step / max(total_steps, 1), 1.0)
    if cfg.schedule == "none":
        return cfg.lr
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * t))
    if cfg.schedule == "onecycle":  # warm up over 25% of the steps from lr/25, then cosine to ~0
        warm = 0.25
        if t < warm:
            return cfg.lr / 25 + (cfg.lr - cfg.lr / 25) * 0.5 * (1 - math.cos(math.pi * t / warm))
        return cfg.lr * (1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * (t - warm) / (1 - warm))))
    raise ParameterError(f"unknown schedule {cfg.schedule!r}: use onecycle, cosine or none")


def augment_batch(x: torch.Tensor, generator: torch.Generator, min_scale: float) -> torch.Tensor:
    """Random horizontal flip and random crop of a float batch, in one grid_sample.

    Args:
        x: float N x C x H x W batch, on any device.
        generator: the batch's generator, a CPU one (every draw comes from it).
        min_scale: < 1 crops a random square of that fraction of the side or more and resizes it
            back; 1 shifts by up to 1/8 of the side (CIFAR's 4-pixel padded crop, zeros at the border).

    Returns:
        The augmented batch, same shape.
    """
    n, _, h, _ = x.shape
    scale = min_scale + (1 - min_scale) * torch.rand(n, generator=generator)
    room = (1 - scale) if min_scale < 1 else torch.full((n,), 0.25)
    tx = (torch.rand(n, generator=generator) * 2 - 1) * room
    ty = (torch.rand(n, generator=generator) * 2 - 1) * room
    if min_scale >= 1:  # whole-pixel shifts keep the crop exact
        tx = torch.round(tx * h / 2) * 2 / h
        ty = torch.round(ty * h / 2) * 2 / h
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = scale * flip
    theta[:, 1, 1] = scale
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    # The draws above come from the CPU generator on any device (the same seed gives the same
    # crops everywhere); the resampling runs where the batch is.
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def square_side(size: int | tuple[int, int]) -> int:
    """The side of a square input size. Training and evaluation resize to squares: every registry
    entry's input is one, and a user's (H, W) model is explained, never trained, here.

    Raises:
        ParameterError: an input size that is not square.
    """
    if isinstance(size, int):
        return size
    height, width = size
    if height != width:
        raise ParameterError(f"training and evaluation need a square input size, not {height}x{width}")
    return height


def batch_inputs(x_uint8: torch.Tensor, spec: ModelSpec, size: int) -> torch.Tensor:
    """A uint8 batch as the model's input, on the batch's device: normalised, resized to ``size``
    where it differs, channels-last (the fast layout for convolutions of oneDNN and cuDNN)."""
    x = normalize(x_uint8, spec)
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.contiguous(memory_format=torch.channels_last)


def make_optimizer(cfg: TrainConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """The optimizer ``cfg.optimizer`` over ``params`` at the peak learning rate.

    Raises:
        ValueError: an unknown optimizer.
    """
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ParameterError(f"unknown optimizer {cfg.optimizer!r}: use sgd, adam or adamw")


def init_model(spec: ModelSpec, cfg: TrainConfig) -> nn.Module:
    """The entry's model as training starts it: seeded initialisation; for transfer learning, the
    ImageNet weights (``cfg.init_weights`` or torchvision's) wherever they fit; for any other entry
    given ``cfg.init_weights``, that checkpoint of the same architecture, whole (a warm restart:
    a new learning-rate cycle from trained weights, after Loshchilov and Hutter's SGDR).

    Raises:
        CheckpointError: the weights do not fit the architecture.
    """
    torch.manual_seed(cfg.seed)
    model = spec.build(**cfg.arch_kwargs)
    if spec.pretrained == "imagenet":
        from ..models.weights import read_state_dict, torchvision_state_dict

        state = read_state_dict(cfg.init_weights)[0] if cfg.init_weights else torchvision_state_dict("resnet18")
        own = model.state_dict()
        keep = {k: v.to(own[k].dtype) for k, v in state.items() if k in own and v.shape == own[k].shape}
        if len(keep) < len(own) - 2:  # all but the new fc (weight and bias)
            raise CheckpointError(f"{cfg.init_weights or 'the ImageNet weights'} do not fit {spec.arch}")
        model.load_state_dict({**own, **keep})
    elif cfg.init_weights:
        from ..models.weights import load_weights

        load_weights(model, cfg.init_weights, spec.arch)
    return model


def train_mode(model: nn.Module) -> None:
    """model.train(), except batch norm layers whose parameters are frozen (transfer learning):
    their running statistics stay those of the pretrained model, as their weights do."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters()):
            m.eval()


def optimizer_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    precision: Precision,
    scaler: torch.amp.GradScaler | None = None,
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward (under ``precision``'s autocast), loss (``criterion`` of float32 logits and
    labels; cross-entropy by default), backward and optimizer step; through ``scaler`` where
    float16 needs one (``precision.scaler()``).

    Returns:
        (logits, loss) of the forward pass.
    """
    with precision.autocast():
        logits = model(x)
        loss = criterion(logits.float(), y)
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(optimizer)  # skips the step where the scaled gradients overflowed
        scaler.update()
    return logits, loss
