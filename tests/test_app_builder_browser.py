"""The scenario builder and the similarity heatmap in a real browser (headless Chromium, as
tests/test_app_browser.py): build a culture scenario on the echo backend in the form, see its
YAML and network, Validate, Start, and watch the run appear on the Runs page.

Skipped, with the reason, where Debian's chromium / chromium-driver are not installed.
"""
# ruff: noqa: F811 - fixtures imported from conftest_app are used as test arguments

from __future__ import annotations

import json

import pytest
import yaml
from conftest_app import browser_app, results_dir  # noqa: F401 - fixtures
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from test_app_browser import errors_on_page, pick, selector, visit, wait_until

pytestmark = pytest.mark.timeout(240)


def form_input(duo, key: str):
    return duo.driver.find_element(By.CSS_SELECTOR, selector({"type": "cs-build", "key": key}))


def type_into(duo, key: str, value: str) -> None:
    """Replace an input's value as a user does (select all, type, Enter: the inputs are debounced)."""
    element = form_input(duo, key)
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(value, Keys.ENTER)


def paste(duo, area, text: str) -> None:
    """Put ``text`` into a React-controlled text area as a paste does (one input event)."""
    duo.driver.execute_script(
        "const setter = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set;"
        "setter.call(arguments[0], arguments[1]);"
        "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));", area, text)


def yaml_text(duo) -> dict:
    text = duo.driver.find_element(By.ID, "launch-text").get_attribute("value")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def open_builder(duo, kind: str) -> None:
    """The Run-a-scenario page with ``kind`` chosen in the builder and its default YAML shown."""
    visit(duo, "/launch")
    duo.wait_for_element("#builder-kind")
    duo.select_dcc_dropdown("#builder-kind", value=kind)
    wait_until(lambda: yaml_text(duo).get("kind") == kind, what=f"the default {kind} YAML")


def test_the_builder_makes_a_scenario_that_validates_starts_and_shows_up_live(browser_app, results_dir):
    duo = browser_app
    open_builder(duo, "culture")
    assert yaml_text(duo)["population"] == {"size": 10}

    type_into(duo, "name", "built-in-browser")
    wait_until(lambda: yaml_text(duo).get("name") == "built-in-browser", what="name into the YAML")
    type_into(duo, "llm.model", "echo/x")
    wait_until(lambda: (yaml_text(duo).get("llm") or {}).get("model") == "echo/x", what="llm.model into the YAML")
    type_into(duo, "population.size", "6")
    wait_until(lambda: yaml_text(duo)["population"]["size"] == 6, what="size into the YAML")
    wait_until(lambda: "complete: 6 agents, 15 edges" in duo.find_element("#builder-network-line").text,
               what="the network drawn before running")

    # and the other way: an edit of the YAML shows in the form
    area = duo.driver.find_element(By.ID, "launch-text")
    text = area.get_attribute("value").replace("steps: 3", "steps: 2")
    paste(duo, area, text)
    wait_until(lambda: form_input(duo, "steps").get_attribute("value") == "2",
               what=f"steps from the YAML ({duo.find_element('#builder-msg').text})")

    duo.find_element("#launch-validate").click()
    wait_until(lambda: "valid (culture, 2 steps)" in duo.find_element("#launch-msg").text, timeout=120,
               what="validation")
    assert not errors_on_page(duo)
    duo.find_element("#launch-start").click()
    wait_until(lambda: "started" in duo.find_element("#launch-msg").text, timeout=60, what="start")

    visit(duo, "/")
    script = "return [...document.querySelectorAll('#runs-table tbody tr')].map(r => r.innerText)"
    row = lambda: next(t for t in duo.driver.execute_script(script) if t.startswith("built-in-browser"))  # noqa: E731
    wait_until(lambda: "done" in row(), timeout=120, what="the started run, done, on the Runs page")
    done = [p for p in results_dir["root"].iterdir() if p.name.startswith("built-in-browser")]
    manifest = json.loads((done[0] / "manifest.json").read_text())
    assert manifest["scenario"]["llm"]["model"] == "echo/x" and manifest["steps_completed"] == 2


def test_a_prompt_preset_fills_the_prompts_and_the_yaml_validates(browser_app, results_dir):
    from app.builder import prompt_presets

    duo = browser_app
    open_builder(duo, "culture")
    type_into(duo, "llm.model", "echo/x")
    wait_until(lambda: (yaml_text(duo).get("llm") or {}).get("model") == "echo/x", what="llm.model into the YAML")

    want = prompt_presets("culture")["proverbs"]
    pick(duo, selector({"type": "cs-build-prompt-preset", "key": "prompts"}), "proverbs")
    prompts = {k.rsplit(".", 1)[1]: v for k, v in want.items()}
    wait_until(lambda: (yaml_text(duo).get("culture") or {}).get("prompts") == prompts,
               what=f"the preset's prompts in the YAML ({duo.find_element('#builder-msg').text})")
    for key, text in want.items():
        assert form_input(duo, key).get_attribute("value") == text
    assert yaml_text(duo)["llm"]["model"] == "echo/x"  # the other edits stay

    duo.find_element("#launch-validate").click()
    wait_until(lambda: "valid (culture, 3 steps)" in duo.find_element("#launch-msg").text, timeout=120,
               what=f"validation ({duo.find_element('#launch-msg').text})")
    assert not errors_on_page(duo)


def test_the_similarity_heatmap_of_one_step_against_another(browser_app, results_dir):
    duo = browser_app
    visit(duo, "/ideas?run=alpha")
    script = ("const gd = document.querySelector('#sim-graph .js-plotly-plot');"
              "return gd && gd.data && gd.data[0] && gd.data[0].type === 'heatmap' ? [gd.data[0].x, gd.data[0].y,"
              " gd.layout.title.text] : null;")
    wait_until(lambda: duo.driver.execute_script(script), timeout=90, what="the heatmap")
    pick(duo, "#sim-against", "2")
    def against_two():
        got = duo.driver.execute_script(script)
        return got if got and "against step 2" in got[2] else None

    x, y, _ = wait_until(against_two, timeout=60, what=f"step 4 against step 2 ({duo.find_element('#sim-msg').text})")
    assert len(y) == 8 and all("step 4" in label for label in y)
    assert len(x) == 8 and all("step 2" in label for label in x)
    assert not errors_on_page(duo)


def test_the_ideas_page_shows_the_similarity_heatmap_with_both_texts(browser_app, results_dir):
    import polars as pl
    from selenium.webdriver.common.action_chains import ActionChains

    from app.ui import hover_text

    duo = browser_app
    visit(duo, "/ideas?run=alpha")
    script = ("const gd = document.querySelector('#sim-graph .js-plotly-plot');"
              "return gd && gd.data && gd.data[0] && gd.data[0].type === 'heatmap' ? gd.data[0].x : null;")
    labels = wait_until(lambda: duo.driver.execute_script(script), timeout=90,
                        what=f"the heatmap ({duo.find_element('#sim-msg').text})")
    assert len(labels) == 8 and all("step 4" in label for label in labels)
    ideas = pl.read_parquet(results_dir["root"] / "alpha" / "ideas.parquet").filter(pl.col("step") == 4)
    texts = {hover_text(t, width=60, limit=240) for t in ideas["text"].to_list()}
    assert all(label.split("<br>", 1)[1] in texts for label in labels)
    # hovering a cell shows both ideas' texts
    plot = duo.driver.find_element(By.CSS_SELECTOR, "#sim-graph .nsewdrag")
    ActionChains(duo.driver).move_to_element(plot).perform()
    hover = wait_until(lambda: duo.driver.execute_script(
        "const h = document.querySelector('#sim-graph .hoverlayer .hovertext'); return h && h.textContent;"),
        what="a hover label")
    assert "vs" in hover and hover.count("step 4") == 2 and "cosine" in hover
    assert "step 4: 8 ideas" in duo.driver.execute_script(
        "return document.querySelector('#sim-graph .js-plotly-plot').layout.title.text")
