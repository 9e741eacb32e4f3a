"""The models each dashboard page opens on, in one place (no page names a registry model itself).

Each default is a list of preferences: a page opens on the first one with weights here, so a
checkout where the course's AlexNets are not trained yet still opens on a trained model.
"""

from __future__ import annotations

# The course's AlexNet (its Figure 2), trained for the domain and for the class of a PACS image:
# the kernel, feature-map, filter-activation, training and compare pages open on them.
COURSE_DOMAIN = ("alexnet_pacs_domain", "alexnet_gap_pacs_domain")
COURSE_CLASS = ("alexnet_pacs_class", "alexnet_gap_pacs_class")
# The compare page's pair (domain model, class model), in order of preference: both must be trained.
COURSE_PAIRS = tuple(zip(COURSE_DOMAIN, COURSE_CLASS))
# The CAM-capable AlexNet (global average pooling before one Linear): pages whose methods include
# the original CAM open on it.
CAM_MODEL = ("alexnet_gap_pacs_class",)
# A 32x32 CIFAR-10 model: pages that run over many held-out images open on it (seconds on a CPU).
SMALL_CIFAR = ("table2_cnn_cifar10",)
# The imbalance page's pair: ResNet-32 trained on long-tailed CIFAR-10, by loss.
IMBALANCE_PAIR = {"cross-entropy": "resnet32_cifar10lt_ce", "class-balanced focal": "resnet32_cifar10lt_cbfocal"}
# The same ResNet-32 trained on all of CIFAR-10 (5,000 images per class): the accuracy the long tail
# gives up, shown beside the pair.
IMBALANCE_UPPER_BOUND = "resnet32_cifar10"
# Filters chosen in advance where the course's exercise names them: ResNet-18 (ImageNet) conv1
# filters that pick out stripes and colours on zebra.jpg.
CLASSIC_FILTERS = {("resnet18_imagenet", "conv1"): [14, 26, 32, 49, 52]}
# The course's "Enhancing AlexNet" report: its three variants, each trained for both tasks.
ALEXNET_VARIANTS = ("alexnet", "alexnet_large_kernel", "alexnet_avgpool")
PACS_TASKS = ("pacs_domain", "pacs_class")
