// Few-shot quiz: 5-way or 20-way 1-shot rounds on the build's generated alphabets.
//
//   <div class="widget" data-widget="few-shot-quiz" markdown>
//     …static figure of one round, rendered by the build…
//   </div>
//
// A round: N characters of one alphabet, each drawn once by the same hand (the
// support set), and a drawing of one of them by another hand (the query). The
// reader picks the support drawing of the query's character by clicking it or
// with the keyboard (Tab or the arrow keys move, Enter or Space chooses, number
// keys 1-9 choose directly), sees whether it was right, and goes on with "Next
// round". The running score per size lives in the browser (lib/quiz-score.js).
//
// The glyphs are sprite sheets written by site_builder/glyphs.py: one PNG per
// alphabet, a row per hand and a column per character, described by
// assets/glyphs/index.json. No model runs here.
//
// For tests and outside tools the element carries data-state ("loading" |
// "busy" | "ready" | "error"), data-way, data-round (a counter) and
// data-answered ("true" once the current round is answered); element.fewShotQuiz
// exposes the state, its `round` included.
import { button, htmlElement } from "../lib/plot.js";
import { loadJson } from "../lib/data.js";
import { accuracy, readScores, recordAnswer, resetScores, onScoresChange, WAYS } from "../lib/quiz-score.js";
import { siteUrl, WidgetError } from "../lib/site.js";

const GLYPHS = "assets/glyphs/";

export async function mount(root) {
  root.dataset.state = "loading";
  const index = await loadJson(`${GLYPHS}index.json`, "the index of the glyph alphabets", { format: 1 });
  if (!Array.isArray(index.alphabets) || index.alphabets.length === 0
      || !(index.characters >= Math.max(...WAYS)) || !(index.hands >= 2)) {
    throw new WidgetError(`the glyph alphabets are too few for a ${Math.max(...WAYS)}-way round with two hands.`);
  }
  const quiz = new FewShotQuiz(root, index);
  await quiz.newRound();
  return quiz;
}

function randomInt(n) {
  return Math.floor(Math.random() * n);
}

/** `count` distinct integers from 0..n-1, in random order. */
function sample(n, count) {
  const pool = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < count; i++) {
    const j = i + randomInt(n - i);
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, count);
}

/** The sheet image of an alphabet, decoded once (so a round appears whole). */
const sheets = new Map();
function loadSheet(file) {
  if (!sheets.has(file)) {
    const url = siteUrl(GLYPHS + file).href;
    const image = new Image();
    image.src = url;
    const ready = image.decode().then(() => url, () => {
      sheets.delete(file);
      throw new WidgetError(`the glyph sheet ${file} could not be loaded.`);
    });
    sheets.set(file, ready);
  }
  return sheets.get(file);
}

class FewShotQuiz {
  constructor(root, index) {
    this.root = root;
    this.index = index;
    this.way = WAYS[0];
    this.round = null;
    this.rounds = 0;
    root.fewShotQuiz = this;
    this.build();
    onScoresChange(() => this.showScores());
  }

  build() {
    this.wayButtons = WAYS.map((way) => {
      const b = button({
        label: `${way}-way`, title: `Rounds with ${way} characters to choose from`,
        className: "few-shot-quiz__way", onClick: () => this.setWay(way),
      });
      b.dataset.way = String(way);
      return b;
    });
    const sizes = htmlElement("div", { class: "few-shot-quiz__ways", role: "group", "aria-label": "Round size" },
      htmlElement("span", {}, "Round size:"), ...this.wayButtons);

    this.query = htmlElement("span", { class: "few-shot-glyph few-shot-quiz__query-glyph", role: "img" });
    this.queryCaption = htmlElement("span", { class: "few-shot-quiz__caption" });
    const query = htmlElement("figure", { class: "few-shot-quiz__query" },
      this.query, htmlElement("figcaption", {}, this.queryCaption));

    this.prompt = htmlElement("p", { class: "few-shot-quiz__prompt", id: `few-shot-prompt-${++FewShotQuiz.count}` });
    this.choices = htmlElement("div", {
      class: "few-shot-quiz__choices", role: "group", "aria-labelledby": this.prompt.id,
    });
    this.choices.addEventListener("keydown", (event) => this.onChoiceKey(event));
    this.root.addEventListener("keydown", (event) => this.onNumberKey(event));

    this.feedback = htmlElement("p", { class: "few-shot-quiz__feedback", "aria-live": "polite" });
    this.nextButton = button({ label: "Next round", className: "few-shot-quiz__next", onClick: () => this.newRound(true) });
    this.resetButton = button({
      label: "Reset scores", title: "Forget the answers counted so far, for both sizes",
      className: "few-shot-quiz__reset", onClick: () => resetScores(),
    });
    this.score = htmlElement("p", { class: "few-shot-quiz__score", "aria-live": "polite" });

    const board = htmlElement("div", { class: "few-shot-quiz__board" },
      query, htmlElement("div", { class: "few-shot-quiz__support" }, this.prompt, this.choices));
    const ui = htmlElement("div", { class: "few-shot-quiz" },
      sizes, board, this.feedback,
      htmlElement("div", { class: "few-shot-quiz__buttons" }, this.nextButton, this.resetButton),
      this.score);
    this.root.append(ui);
    this.showWay();
    this.showScores();
  }

  setWay(way) {
    if (way === this.way) return;
    this.way = way;
    this.showWay();
    this.newRound();
  }

  showWay() {
    this.root.dataset.way = String(this.way);
    for (const b of this.wayButtons) b.setAttribute("aria-pressed", String(Number(b.dataset.way) === this.way));
  }

  /** Draw a new round; with `focus`, put the keyboard on its first choice. */
  async newRound(focus = false) {
    const { alphabets, characters, hands } = this.index;
    const alphabet = randomInt(alphabets.length);
    const supportHand = randomInt(hands);
    const queryHand = (supportHand + 1 + randomInt(hands - 1)) % hands;
    const round = {
      way: this.way, alphabet, classes: sample(characters, this.way),
      supportHand, queryHand, answer: randomInt(this.way), chosen: null,
    };
    this.round = round;
    this.root.dataset.state = "busy";
    const sheet = await loadSheet(alphabets[alphabet].file);
    if (this.round !== round) return;          // a newer round was asked for meanwhile
    this.draw(round, sheet);
    this.rounds += 1;
    this.root.dataset.round = String(this.rounds);
    this.root.dataset.answered = "false";
    this.root.dataset.state = "ready";
    if (focus) this.choices.firstElementChild?.focus();
  }

  glyph(element, sheet, character, hand) {
    const { characters, hands } = this.index;
    element.style.backgroundImage = `url("${sheet}")`;
    element.style.backgroundSize = `${characters * 100}% ${hands * 100}%`;
    element.style.backgroundPosition =
      `${(100 * character) / (characters - 1)}% ${(100 * hand) / (hands - 1)}%`;
  }

  draw(round, sheet) {
    const name = this.index.alphabets[round.alphabet].name;
    this.glyph(this.query, sheet, round.classes[round.answer], round.queryHand);
    this.query.setAttribute("aria-label", "The new drawing to classify");
    this.queryCaption.textContent = `New drawing, by hand ${round.queryHand + 1}`;
    this.prompt.textContent = `Which of these ${round.way} characters of the ${name} alphabet ` +
      `(all drawn by hand ${round.supportHand + 1}) is it?`;
    this.choices.classList.toggle("few-shot-quiz__choices--many", round.way > 8);
    this.choices.replaceChildren(...round.classes.map((character, i) => {
      const tile = htmlElement("span", { class: "few-shot-glyph" });
      this.glyph(tile, sheet, character, round.supportHand);
      const choice = button({
        label: "", className: "few-shot-quiz__choice", onClick: () => this.choose(i),
      });
      choice.setAttribute("aria-label", `Character ${i + 1}`);
      choice.dataset.index = String(i);
      choice.append(tile, htmlElement("span", { class: "few-shot-quiz__number", "aria-hidden": "true" }, String(i + 1)));
      return choice;
    }));
    this.feedback.textContent = "";
    this.feedback.className = "few-shot-quiz__feedback";
    this.nextButton.textContent = "Skip this round";
  }

  choose(i) {
    const round = this.round;
    if (!round || round.chosen !== null || this.root.dataset.state !== "ready") return;
    round.chosen = i;
    const right = i === round.answer;
    const buttons = [...this.choices.children];
    buttons.forEach((b, j) => {
      b.setAttribute("aria-disabled", "true");
      b.classList.toggle("is-answer", j === round.answer);
      b.classList.toggle("is-wrong", j === i && !right);
    });
    buttons[round.answer].setAttribute("aria-label", `Character ${round.answer + 1} (the answer)`);
    this.feedback.className = `few-shot-quiz__feedback ${right ? "is-right" : "is-wrong"}`;
    this.feedback.textContent = right
      ? `Right: it is character ${round.answer + 1}.`
      : `Not this time: you chose ${i + 1}, the drawing is character ${round.answer + 1} (outlined).`;
    this.nextButton.textContent = "Next round";
    this.root.dataset.answered = "true";
    recordAnswer(round.way, right);       // announces the new scores; showScores follows
    this.nextButton.focus();
  }

  /** Arrow keys move between the choices (a grid), Home and End jump. */
  onChoiceKey(event) {
    const buttons = [...this.choices.children];
    const at = buttons.indexOf(document.activeElement);
    if (at < 0) return;
    const top = buttons[0].offsetTop;
    const columns = Math.max(1, buttons.filter((b) => b.offsetTop === top).length);
    const moves = {
      ArrowRight: at + 1, ArrowLeft: at - 1, ArrowDown: at + columns, ArrowUp: at - columns,
      Home: 0, End: buttons.length - 1,
    };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const to = Math.max(0, Math.min(buttons.length - 1, moves[event.key]));
    buttons[to].focus();
  }

  /** Number keys 1-9 choose directly, wherever the focus is in the widget. */
  onNumberKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || !/^[1-9]$/.test(event.key)) return;
    const i = Number(event.key) - 1;
    if (!this.round || i >= this.round.way || this.round.chosen !== null) return;
    event.preventDefault();
    this.choose(i);
  }

  showScores() {
    const scores = readScores();
    this.scores = scores;
    const parts = WAYS.map((way) => {
      const s = scores[way];
      const percent = accuracy(s);
      return percent === null ? `${way}-way: no answers yet`
        : `${way}-way: ${s.right} of ${s.total} right (${percent.toFixed(0)}%)`;
    });
    this.score.textContent = `Your score (kept in this browser) — ${parts.join(" · ")}`;
    for (const way of WAYS) this.root.dataset[`score${way}`] = `${scores[way].right}/${scores[way].total}`;
  }
}
FewShotQuiz.count = 0;
