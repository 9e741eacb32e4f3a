"""The Convolution, Output sizes, CNN from scratch and Piecewise-linear view pages under AppTest:
default state, main widgets, and errors shown as messages instead of tracebacks."""

from __future__ import annotations

from tests.apptest import no_errors, open_page, widget


def test_convolution_page_by_hand():
    at = open_page("convolution.py")
    assert at.title[0].value == "Convolution"
    assert any(m.value.startswith("Output (1, 1) = ") and m.value.endswith("= 4") for m in at.markdown)
    for boundary in ("reflect", "replicate", "circular", "valid", "zero"):
        at.radio(key="conv_boundary").set_value(boundary).run()
        no_errors(at)
    at.number_input(key="conv_row").set_value(1).run()  # 'valid' had only row 0
    at.radio(key="conv_flip").set_value(False).run()
    assert any(m.value.endswith("= -4") for m in at.markdown)  # cross-correlation with the Sobel kernel
    at.number_input(key="conv_col").set_value(4).run()
    at.selectbox(key="conv_side").set_value(5).run()
    no_errors(at)
    at.number_input(key="conv_rows").set_value(2).run()  # a 5x5 kernel on 2 rows: valid is impossible
    at.radio(key="conv_boundary").set_value("valid").run()
    assert not at.exception and any("does not fit" in e.value for e in at.error)


def test_convolution_page_as_a_matrix():
    at = open_page("convolution.py")
    assert any("A is **4 x 16**" in m.value for m in at.markdown)
    for key, value in [("matrix_cin", 2), ("matrix_cout", 3), ("matrix_stride", 2), ("matrix_padding", 1)]:
        at.number_input(key=key).set_value(value).run()
        no_errors(at)
    assert any("A is **12 x 32**" in m.value and "blocks" in m.value for m in at.markdown)
    at.number_input(key="matrix_padding").set_value(0).run()
    at.number_input(key="matrix_kernel").set_value(7).run()
    assert not at.exception and any("kernel spans 7" in e.value for e in at.error)


def test_output_sizes_page():
    at = open_page("output_sizes.py")
    assert at.title[0].value == "Output sizes"
    assert any("32 -> 4" in m.value and "36 x 36" in m.value for m in at.markdown)
    assert any("kernel **9**" in s.value for s in at.success)
    assert any("padding **2**" in s.value for s in at.success)
    at.number_input(key="same_kernel").set_value(4).run()
    assert not at.exception and any("cannot be split evenly" in e.value for e in at.error)
    at.number_input(key="same_kernel").set_value(5).run()
    at.number_input(key="solve_out").set_value(600).run()
    assert any("no kernel maps" in e.value for e in at.error)
    at.number_input(key="sizes_input").set_value(4).run()  # three 2x2 pools of a 4-pixel side: empty
    assert any("layer 6" in e.value for e in at.error)
    at.selectbox(key="model").set_value("resnet32_cifar10").run()
    assert not at.exception
    assert "receptive field" in at.dataframe[-1].value.columns


def test_scratch_page_shows_the_shipped_record():
    at = open_page("scratch.py")
    assert at.title[0].value == "CNN from scratch"
    accuracy = [m for m in at.metric if m.label.startswith("Final accuracy")]
    assert accuracy and accuracy[0].value.endswith("%")
    assert len(at.get("plotly_chart")) == 1
    assert any("Conv2d(3, 16, 3" in c.value for c in at.code)


def test_piecewise_page():
    at = open_page("piecewise.py")
    assert at.title[0].value == "Piecewise-linear view"
    assert any("Breakpoints" in m.value and "-2, 0" in m.value for m in at.markdown)
    at.slider(key="piecewise_x0").set_value(-3.0).run()
    assert any("W = 0, b = 0" in m.value for m in at.markdown)  # left of -2 every unit is off
    assert any("reproduces the logit" in m.value for m in at.markdown)
    table = at.dataframe[0].value
    b = table.loc[table["quantity"].str.startswith("b = h(x0)"), "value"].iloc[0]
    from_biases = table.loc[table["quantity"].str.startswith("b as the sum"), "value"].iloc[0]
    assert abs(b - from_biases) < 1e-6
    widget(at.selectbox, "piecewise_target_table2_cnn_cifar10_").set_value(5).run()
    no_errors(at)
    at.selectbox(key="model").set_value("linear_cnn_cifar10").run()
    no_errors(at)
    assert not any("not piecewise linear" in m.value for m in at.markdown)
