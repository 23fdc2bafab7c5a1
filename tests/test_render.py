"""The compact text a model reads: a passage's heading line is left out when the section path names it."""

from __future__ import annotations

from server.render import passage


def test_a_heading_the_path_names_is_left_out_even_when_indented() -> None:
    path = ["FAQ", "1. etcd pod pending"]
    assert passage("### 1. etcd pod pending\n\nThe etcd cluster uses pvc.", path) == "The etcd cluster uses pvc."
    assert passage("  ### 1. etcd pod pending\n\n  The etcd cluster uses pvc.", path) == "  The etcd cluster uses pvc."


def test_other_first_lines_stay() -> None:
    path = ["FAQ", "1. etcd pod pending"]
    code = "    ### 1. etcd pod pending\n    more code"  # four spaces: a code block, not a heading
    assert passage(code, path) == code
    other = "## Another heading\nText."
    assert passage(other, path) == other
    assert passage("### 1. etcd pod pending", path) == "### 1. etcd pod pending"  # nothing else: keep the text
