"""The peer libraries' versions of each method, on the same model object, inputs, targets and layer.

Each peer is called the way its documentation shows, with the options that make it do the same
work as ours (raw maps, bilinear upsampling to the input size, the same integration steps and
chunking). Construction of the explainer is inside the timed call, as it is for ours.
"""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from interp.methods.attribution.dff import DffOptions

from .cases import LRP_METHODS, MORE_METHODS, ModelCase, occlusion_windows, superpixel_masks
from .peers_cams import PGC_CLASSES, TC_CLASSES, cam_family_impls
from .timing import Impl

PEERS = ("pytorch-grad-cam", "torch-cam", "captum", "zennit")
# Which peer has which method (the benchmark's rows list a peer only where it has the method).
PEER_METHODS = {
    "pytorch-grad-cam": ("grad_cam", "guided_backprop", "guided_grad_cam", *PGC_CLASSES, "fullgrad", "dff"),
    "torch-cam": ("cam", "grad_cam", *TC_CLASSES),
    "captum": ("grad_cam", "guided_backprop", "guided_grad_cam", "saliency", "integrated_gradients", *MORE_METHODS),
    "zennit": LRP_METHODS,
}


def same_draws(method: str, batch: int) -> bool:
    """Whether ours and Captum's maps can agree: GradientSHAP's samples come from Captum's global
    generators (torch's and numpy's) and ours from a seeded one; Captum's noise tunnel lays out a
    batch's noise in another order. (LIME and KernelSHAP: Captum is seeded per image, as ours.)"""
    return method != "gradient_shap" and not (method == "vargrad" and batch > 1)


def _upsample(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def _unavailable(peer: str, why: str) -> Impl:
    impl = Impl(peer, fn=lambda: None)
    impl.error = f"not applicable: {why}"
    return impl


# ---------------------------------------------------------------------------------------------
# pytorch-grad-cam (package grad-cam, import pytorch_grad_cam)


def _pgc_grad_cam(case: ModelCase, x: torch.Tensor, targets: torch.Tensor) -> Callable[[], np.ndarray]:
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    layer = case.model.get_submodule(case.grad_layer)

    def run() -> np.ndarray:
        with GradCAM(case.model, target_layers=[layer]) as cam:  # __exit__ removes its hooks
            return cam(x, [ClassifierOutputTarget(int(t)) for t in targets])

    return run


def _pgc_guided(case: ModelCase) -> tuple[Callable[[torch.Tensor, torch.Tensor], np.ndarray], torch.nn.Module]:
    """GuidedBackpropReLUModel swaps the model's ReLU modules during each call (and puts back
    non-in-place ones), so it gets a deep copy; it explains image 0 of its input only, so a
    batch is one call per image."""
    from pytorch_grad_cam import GuidedBackpropReLUModel

    twin = copy.deepcopy(case.model)
    gb = GuidedBackpropReLUModel(twin, device=next(twin.parameters()).device)

    def run(x: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
        maps = [gb(x[i : i + 1].clone(), target_category=int(t)) for i, t in enumerate(targets)]
        return np.stack(maps).transpose(0, 3, 1, 2)  # its maps are H x W x C

    return run, twin


def _pgc_fullgrad(case: ModelCase, x: torch.Tensor, targets: torch.Tensor) -> Callable[[], np.ndarray]:
    """FullGrad called as its README calls a CAM, with no target layers (it takes every Conv2d and
    BatchNorm2d with a bias itself). Its map is min-max scaled per image (and resized with OpenCV,
    from the input's size to the same size); the agreement, a Pearson correlation per image, is
    the same with or without that scaling, so ours is compared as it is returned."""
    from pytorch_grad_cam import FullGrad
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    def run() -> np.ndarray:
        with FullGrad(case.model, target_layers=[]) as cam:  # __exit__ removes its hooks
            return cam(x, [ClassifierOutputTarget(int(t)) for t in targets])

    return run


def dff_head(case: ModelCase) -> tuple[Callable[[torch.Tensor], torch.Tensor] | None, str]:
    """What pytorch-grad-cam's DFF scores concepts with (``computation_on_concepts``): the model's
    classifier on one concept vector, as its examples pass ``model.fc``. That is the rest of the
    model (ours' score) only where the benchmark's layer is the one a global-average-pooling head
    pools: there the linear layer after the pooling, or nothing where the pooled maps are the
    classes (NiN). Elsewhere: None and why."""
    if case.cam_layer is None or case.cam_layer != case.grad_layer:
        return None, (
            "pytorch-grad-cam's DFF scores the concepts with a head given as a function of the concept "
            f"vector; {case.grad_layer} is not the layer this model's global-average pooling reads"
        )
    device = next(case.model.parameters()).device  # it hands the head its concepts on the CPU
    if case.fc_layer is None:
        return (lambda c: c.to(device)), "the pooled maps are the classes: a concept is its own logits"
    fc = case.model.get_submodule(case.fc_layer)
    return (lambda c: fc(c.to(device))), f"the head is {case.fc_layer}, as its examples pass model.fc"


def _pgc_dff(
    case: ModelCase, x: torch.Tensor, targets: torch.Tensor, k: int, head: Callable[[torch.Tensor], torch.Tensor]
) -> Callable[[], np.ndarray]:
    """DeepFeatureFactorization with ``k`` parts, one call per image (its run_dff_on_image; a batch
    is factorised together, ours factorises each image alone), and for each image the part whose
    concept has the target's highest softmax probability, as it labels the parts. Its parts are
    min-max scaled and resized with OpenCV; the Pearson agreement does not see the scaling."""
    from pytorch_grad_cam import DeepFeatureFactorization

    layer = case.model.get_submodule(case.grad_layer)

    def run() -> np.ndarray:
        dff = DeepFeatureFactorization(case.model, layer, computation_on_concepts=head)
        try:
            maps = []
            for i, t in enumerate(targets.tolist()):
                _, parts, scores = dff(x[i : i + 1], k)
                best = int(torch.softmax(torch.from_numpy(scores), -1)[:, t].argmax())
                maps.append(parts[0][best])
        finally:
            dff.activations_and_grads.release()  # its hooks; it has no context manager of its own
        return np.stack(maps)

    return run


# ---------------------------------------------------------------------------------------------
# torch-cam (import torchcam)


def _tc_cam(case: ModelCase, x: torch.Tensor, targets: torch.Tensor) -> Callable[[], torch.Tensor]:
    from torchcam.methods import CAM

    def run() -> torch.Tensor:
        with CAM(case.model, case.cam_layer, case.fc_layer) as extractor:
            with torch.no_grad():
                case.model(x)
            maps = extractor(class_idx=targets.tolist(), normalized=False)[0]
        return _upsample(maps, x.shape[-2:])

    return run


def _tc_grad_cam(case: ModelCase, x: torch.Tensor, targets: torch.Tensor) -> Callable[[], torch.Tensor]:
    from torchcam.methods import GradCAM

    def run() -> torch.Tensor:
        with GradCAM(case.model, case.grad_layer) as extractor:
            scores = case.model(x)
            maps = extractor(class_idx=targets.tolist(), scores=scores, normalized=False)[0]
        return _upsample(maps, x.shape[-2:])

    return run


# ---------------------------------------------------------------------------------------------
# Captum


def _captum(
    case: ModelCase, method: str, x: torch.Tensor, targets: torch.Tensor, ig_steps: int
) -> Callable[[], torch.Tensor]:
    if method in MORE_METHODS:
        return _captum_more(case, method, x, targets)
    from captum.attr import GuidedBackprop, GuidedGradCam, IntegratedGradients, LayerAttribution, LayerGradCam, Saliency

    model, layer = case.model, case.model.get_submodule(case.grad_layer)
    if method == "grad_cam":

        def run() -> torch.Tensor:
            maps = LayerGradCam(model, layer).attribute(x, target=targets, relu_attributions=True)
            return LayerAttribution.interpolate(maps, tuple(x.shape[-2:]), interpolate_mode="bilinear")[:, 0]
    elif method == "guided_backprop":

        def run() -> torch.Tensor:
            return GuidedBackprop(model).attribute(x, target=targets)
    elif method == "guided_grad_cam":

        def run() -> torch.Tensor:
            return GuidedGradCam(model, layer).attribute(x, target=targets, interpolate_mode="bilinear")
    elif method == "saliency":

        def run() -> torch.Tensor:
            return Saliency(model).attribute(x, target=targets, abs=False)
    elif method == "integrated_gradients":

        def run() -> torch.Tensor:
            # The same rule, steps, baseline (zeros) and chunking as ours.
            return IntegratedGradients(model).attribute(
                x, target=targets, n_steps=ig_steps, method="gausslegendre", internal_batch_size=max(32, x.shape[0])
            )
    else:
        raise ValueError(method)
    return run


def _out_of_place(model: torch.nn.Module) -> torch.nn.Module:
    """Captum's hook-based rules fail on in-place ReLUs: a deep copy without them where needed."""
    if not any(getattr(m, "inplace", False) for m in model.modules() if isinstance(m, torch.nn.ReLU)):
        return model
    twin = copy.deepcopy(model)
    for m in twin.modules():
        if isinstance(m, torch.nn.ReLU):
            m.inplace = False
    return twin


def _reused_activation(model: torch.nn.Module, x: torch.Tensor) -> str | None:
    """The name of an activation module that one forward pass calls more than once, if any."""
    from captum.attr._core.deep_lift import SUPPORTED_NON_LINEAR

    calls: dict[str, int] = {}
    handles = [
        m.register_forward_hook(lambda mod, i, o, n=n: calls.__setitem__(n, calls.get(n, 0) + 1))
        for n, m in model.named_modules()
        if type(m) in SUPPORTED_NON_LINEAR
    ]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
    return next((n for n, c in calls.items() if c > 1), None)


def _captum_more(case: ModelCase, method: str, x: torch.Tensor, targets: torch.Tensor) -> Callable[[], torch.Tensor]:
    """Captum's InputXGradient, DeepLift, Deconvolution and Occlusion with ours' defaults."""
    from captum.attr import Deconvolution, DeepLift, InputXGradient, Occlusion

    model, n, size = case.model, x.shape[0], x.shape[-1]
    if method == "input_x_gradient":
        return lambda: InputXGradient(model).attribute(x, target=targets)
    if method in ("deeplift", "deconvolution"):
        cls = DeepLift if method == "deeplift" else Deconvolution
        twin = _out_of_place(model)
        return lambda: cls(twin).attribute(x, target=targets)
    if method == "occlusion":
        window, stride, _ = occlusion_windows(size)
        return lambda: Occlusion(model).attribute(
            x,
            sliding_window_shapes=(3, window, window),
            strides=(3, stride, stride),
            target=targets,
            perturbations_per_eval=max(1, 64 // n),
        )[:, 0]
    raise ValueError(method)


def _captum_sampled(
    case: ModelCase, method: str, x: torch.Tensor, targets: torch.Tensor, samples: int
) -> Callable[[], torch.Tensor]:
    """Captum's GradientShap, NoiseTunnel (vargrad), Lime and KernelShap with ``samples`` samples."""
    from captum.attr import GradientShap, KernelShap, Lime, NoiseTunnel, Saliency

    model, n = case.model, x.shape[0]
    if method == "gradient_shap":
        return lambda: GradientShap(model).attribute(
            x, baselines=torch.zeros_like(x[:1]), n_samples=samples, stdevs=0.0, target=targets
        )
    if method == "vargrad":
        span = float((x.flatten(1).amax(1) - x.flatten(1).amin(1)).mean())  # ours: each image's own range

        def run() -> torch.Tensor:
            torch.manual_seed(0)  # ours' seed: at batch 1 both draw the same noise
            return NoiseTunnel(Saliency(model)).attribute(
                x,
                nt_type="vargrad",
                nt_samples=samples,
                nt_samples_batch_size=max(1, 16 // n),
                stdevs=0.15 * span,
                target=targets,
                abs=False,
            )

        return run
    cls = Lime if method == "lime" else KernelShap
    masks = torch.as_tensor(superpixel_masks(x), device=x.device)

    def one_by_one() -> torch.Tensor:
        maps = []
        for i in range(n):  # one image at a time, as Captum recommends
            torch.manual_seed(0)
            maps.append(
                cls(model).attribute(
                    x[i : i + 1],
                    target=int(targets[i]),
                    feature_mask=masks[i][None, None],
                    n_samples=samples,
                    perturbations_per_eval=min(samples, 64),
                )[0, 0]
            )
        return torch.stack(maps)

    return one_by_one


# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Zennit


def _zennit(case: ModelCase, method: str, x: torch.Tensor, targets: torch.Tensor) -> Impl:
    """Zennit's Gradient attributor with the method's composite and the canonizer a Zennit user picks
    for the model (ResNetCanonizer for torchvision's ResNets, else SequentialMergeBatchNorm); the output
    relevance starts at the target logit, as ours does."""
    from torchvision.models.resnet import ResNet
    from zennit.attribution import Gradient
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.composites import (
        EpsilonAlpha2Beta1,
        EpsilonGammaBox,
        EpsilonPlusFlat,
        LayerMapComposite,
        layer_map_base,
    )
    from zennit.rules import Epsilon
    from zennit.torchvision import ResNetCanonizer
    from zennit.types import Linear as AnyLinear

    from interp.methods.attribution.lrp import input_bounds

    model = case.model
    resnet = isinstance(model, ResNet)
    low, high = input_bounds(x, case.spec.mean, case.spec.std)

    def composite():
        canonizers = [ResNetCanonizer() if resnet else SequentialMergeBatchNorm()]
        return {
            "lrp": lambda: EpsilonPlusFlat(canonizers=canonizers),
            "lrp_epsilon_gamma_box": lambda: EpsilonGammaBox(low=low, high=high, canonizers=canonizers),
            "lrp_alpha2_beta1": lambda: EpsilonAlpha2Beta1(canonizers=canonizers),
            "lrp_epsilon": lambda: LayerMapComposite(
                layer_map_base() + [(AnyLinear, Epsilon())], canonizers=canonizers
            ),
        }[method]()

    def start(out: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(out).scatter(1, targets[:, None], out.gather(1, targets[:, None]))

    def run() -> torch.Tensor:
        with Gradient(model=model, composite=composite()) as attributor:
            return attributor(x.clone().requires_grad_(True), start)[1]

    canonizer = "ResNetCanonizer" if resnet else "SequentialMergeBatchNorm"
    return Impl("zennit", run, model, f"Gradient attributor, {canonizer}, output relevance = the target logit")


def peer_impls(case: ModelCase, method: str, x: torch.Tensor, targets: torch.Tensor, s) -> list[Impl]:
    """One Impl per peer that has ``method``; one that cannot run this case carries the reason
    (``s``: the benchmark's Settings)."""
    if method in PGC_CLASSES:
        return cam_family_impls(case, method, x, targets)
    if method in LRP_METHODS:
        return [_zennit(case, method, x, targets)]
    if method == "fullgrad":
        note = "FullGrad (every Conv2d and BatchNorm2d bias); its maps are min-max scaled and resized with OpenCV"
        return [Impl("pytorch-grad-cam", _pgc_fullgrad(case, x, targets), case.model, note)]
    if method == "dff":
        head, why = dff_head(case)
        if head is None:
            return [_unavailable("pytorch-grad-cam", why)]
        k = DffOptions().n_components  # ours' default
        note = (
            f"DeepFeatureFactorization with ours' {k} parts, one call per image (ours factorises each image "
            f"alone); {why}; its parts come min-max scaled and resized with OpenCV"
        )
        return [Impl("pytorch-grad-cam", _pgc_dff(case, x, targets, k, head), case.model, note)]
    out: list[Impl] = []
    model, ig_steps = case.model, s.ig_steps
    if method == "cam":
        if case.cam_layer is None:
            out.append(_unavailable("torch-cam", "the model has no CAM head"))
        elif case.fc_layer is None:
            out.append(
                _unavailable(
                    "torch-cam",
                    "torch-cam's CAM needs a linear layer after the pooling; "
                    "this model pools class maps directly (NiN)",
                )
            )
        else:
            out.append(
                Impl("torch-cam", _tc_cam(case, x, targets), model, "CAM + bilinear upsampling to the input size")
            )
    if method == "grad_cam":
        out.append(
            Impl(
                "pytorch-grad-cam",
                _pgc_grad_cam(case, x, targets),
                model,
                "GradCAM; its maps are min-max scaled and resized with OpenCV",
            )
        )
        out.append(
            Impl("torch-cam", _tc_grad_cam(case, x, targets), model, "GradCAM + bilinear upsampling to the input size")
        )
    if method == "guided_backprop":
        gb, twin = _pgc_guided(case)
        out.append(
            Impl(
                "pytorch-grad-cam",
                lambda: gb(x, targets),
                twin,
                "GuidedBackpropReLUModel on a deep copy (it swaps the model's ReLUs); one call per image",
            )
        )
    if method == "guided_grad_cam":
        gb, twin = _pgc_guided(case)
        cam = _pgc_grad_cam(case, x, targets)
        out.append(
            Impl(
                "pytorch-grad-cam",
                lambda: gb(x, targets) * cam()[:, None],
                model,
                "GradCAM x GuidedBackpropReLUModel as in its example script; guided backprop on a "
                "deep copy, one call per image",
            )
        )
    if method == "deeplift" and (reused := _reused_activation(model, x)) is not None:
        out.append(
            _unavailable(
                "captum",
                f"Captum's DeepLift needs each activation module run once per forward "
                f"pass; this model calls {reused} more than once",
            )
        )
    elif method in ("gradient_shap", "vargrad", "lime", "kernel_shap"):
        samples = s.surrogate_samples if method in ("lime", "kernel_shap") else s.samples
        out.append(Impl("captum", _captum_sampled(case, method, x, targets, samples), model, _MORE_NOTES[method]))
    elif method in PEER_METHODS["captum"]:
        note = {
            "grad_cam": "LayerGradCam + LayerAttribution.interpolate (bilinear)",
            "guided_grad_cam": "GuidedGradCam, interpolate_mode='bilinear'",
            "integrated_gradients": f"{ig_steps} steps, Gauss-Legendre, the same internal batch size as ours",
            **_MORE_NOTES,
        }.get(method, "")
        out.append(Impl("captum", _captum(case, method, x, targets, ig_steps), model, note))
    return out


_MORE_NOTES = {
    "deeplift": "DeepLift (on a deep copy with out-of-place ReLUs where the model has in-place ones)",
    "deconvolution": "Deconvolution (on a deep copy with out-of-place ReLUs where the model has in-place ones)",
    "gradient_shap": "GradientShap, one zero baseline, stdevs 0; its own random samples",
    "vargrad": "NoiseTunnel(Saliency) vargrad after torch.manual_seed(0), stdevs 0.15 x the batch's mean value "
    "range (ours: each image's)",
    "occlusion": "Occlusion with ours' default window and stride, 64 images per forward pass",
    "lime": "Lime per image on the same superpixels as ours, torch.manual_seed(0) before each (ours' seed)",
    "kernel_shap": "KernelShap per image on the same superpixels as ours, torch.manual_seed(0) before each "
    "(ours' seed)",
}


def as_numpy(output) -> np.ndarray | None:
    """A peer's or our map as float numpy with a leading batch axis (N, H, W) or (N, C, H, W)."""
    if output is None:
        return None
    if isinstance(output, torch.Tensor):
        output = output.detach().float().cpu().numpy()
    return np.asarray(output, dtype=np.float64)


def agreement(ours: np.ndarray | None, theirs: np.ndarray | None) -> float | None:
    """Mean over images of the Pearson correlation of two maps (None where undefined):
    a check that the peer was given the same layer and target, not a quality score."""
    if ours is None or theirs is None or ours.shape != theirs.shape:
        return None
    rs = []
    for a, b in zip(ours.reshape(len(ours), -1), theirs.reshape(len(theirs), -1)):
        if a.std() > 0 and b.std() > 0:
            rs.append(float(np.corrcoef(a, b)[0, 1]))
    return float(np.mean(rs)) if rs else None
