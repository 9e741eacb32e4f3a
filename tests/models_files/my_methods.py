"""A models file that adds a method, as a user writes one: the input's squared magnitude per pixel."""

import interp


def input_energy(model, inputs, target):
    """Sum over colour channels of the squared preprocessed input: ignores the model entirely."""
    return (inputs**2).sum(dim=1)


interp.register_method(
    "input_energy",
    input_energy,
    title="Input energy",
    replace=True,
    shows="the squared input summed over channels",
    signed=False,
)
