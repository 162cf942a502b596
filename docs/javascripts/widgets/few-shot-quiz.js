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
// assets/glyphs/index.json. The quiz shows the 28×28 sheets (the only ones), the
// very pixels the conv nets get.
//
// Two players answer beside the reader (issue 13): the conv net meta-trained
// with MAML and the pretrained (joint-training) one, both fine-tuned the same
// way. After the reader answers, each adapts in the page to the round's
// support drawings (labels 0..N-1) with its exported graph
// (assets/models/<name>.onnx, onnxruntime-web) and classifies the query; its
// answer and confidence appear beside the reader's, and a running score
// "you vs MAML vs pretrained" per size is kept (lib/quiz-score.js). Where the
// models cannot run, the quiz goes on without them and says why.
//
// For tests and outside tools the element carries data-state ("loading" |
// "busy" | "ready" | "error"), data-way, data-round (a counter) and
// data-answered ("true" once the current round is answered), data-models
// ("loading" | "ready" | "error") and data-models-answered ("true" once the
// models' answers to the current round are shown); element.fewShotQuiz
// exposes the state, its `round` (with `players`: each model's answer,
// confidence and probabilities) included.
import { button, htmlElement } from "../lib/plot.js";
import { loadJson } from "../lib/data.js";
import { loadManifest, modelUrl } from "../lib/manifest.js";
import {
  accuracy, readScores, recordAnswer, recordPlayerAnswer, resetScores, onScoresChange, PLAYERS, WAYS,
} from "../lib/quiz-score.js";
import { siteUrl, WidgetError } from "../lib/site.js";

const GLYPHS = "assets/glyphs/";
const JOIN_EVENTS = ["pointerdown", "keydown", "focusin"];

export async function mount(root) {
  root.dataset.state = "loading";
  const index = await loadJson(`${GLYPHS}index.json`, "the index of the glyph alphabets", { format: 1 });
  if (!Array.isArray(index.alphabets) || index.alphabets.length === 0
      || !(index.characters >= Math.max(...WAYS)) || !(index.hands >= 2)) {
    throw new WidgetError(`the glyph alphabets are too few for a ${Math.max(...WAYS)}-way round with two hands.`);
  }
  const quiz = new FewShotQuiz(root, index);
  await quiz.newRound();
  // The models join once the reader starts to play (a pointer, a key or focus
  // in the quiz), in the background: the quiz runs without them, and a visit
  // that only reads the page loads no runtime (a 14 MB WebAssembly binary).
  const join = () => {
    for (const type of JOIN_EVENTS) root.removeEventListener(type, join, true);
    quiz.loadPlayers();
  };
  for (const type of JOIN_EVENTS) root.addEventListener(type, join, true);
  return quiz;
}

/** Ink in [0, 1] (what the models were trained on) of every cell of a sheet, by its URL. */
const pixels = new Map();
function sheetPixels(url, size) {
  if (!pixels.has(url)) {
    const done = (async () => {
      const image = new Image();
      image.src = url;
      await image.decode();
      const canvas = document.createElement("canvas");
      canvas.width = image.naturalWidth;
      canvas.height = image.naturalHeight;
      const context = canvas.getContext("2d", { willReadFrequently: true });
      context.drawImage(image, 0, 0);
      const rgba = context.getImageData(0, 0, canvas.width, canvas.height).data;
      const ink = new Float32Array(canvas.width * canvas.height);
      for (let i = 0; i < ink.length; i++) ink[i] = (255 - rgba[4 * i]) / 255;   // dark ink on white
      return { ink, width: canvas.width, size };
    })();
    done.catch(() => pixels.delete(url));
    pixels.set(url, done);
  }
  return pixels.get(url);
}

/** The size×size drawing of (character, hand) from a sheet's pixels, appended to `out` at `at`. */
function cell(sheet, character, hand, out, at) {
  const { ink, width, size } = sheet;
  for (let y = 0; y < size; y++) {
    const row = (hand * size + y) * width + character * size;
    out.set(ink.subarray(row, row + size), at + y * size);
  }
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
    this.players = htmlElement("ul", { class: "few-shot-quiz__players", "aria-live": "polite" });
    this.versus = htmlElement("p", { class: "few-shot-quiz__versus" });

    const board = htmlElement("div", { class: "few-shot-quiz__board" },
      query, htmlElement("div", { class: "few-shot-quiz__support" }, this.prompt, this.choices));
    const ui = htmlElement("div", { class: "few-shot-quiz" },
      sizes, board, this.feedback, this.players,
      htmlElement("div", { class: "few-shot-quiz__buttons" }, this.nextButton, this.resetButton),
      this.score, this.versus);
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
    const sheet = await loadSheet(this.sheetFile(alphabet));
    if (this.round !== round) return;          // a newer round was asked for meanwhile
    this.draw(round, sheet);
    this.root.dataset.modelsAnswered = "false";
    this.players.replaceChildren();
    round.players = null;
    if (this.models) this.play(round);         // answered now, shown once the reader has
    this.rounds += 1;
    this.root.dataset.round = String(this.rounds);
    this.root.dataset.answered = "false";
    this.root.dataset.state = "ready";
    if (focus) this.choices.firstElementChild?.focus();
  }

  /** The sheet the quiz shows: the models' 28×28 one where the index has it. */
  sheetFile(alphabet) {
    const entry = this.index.alphabets[alphabet];
    return entry.model_file ?? entry.file;
  }

  /** Find the conv nets in the model list and open their graphs. */
  async loadPlayers() {
    this.root.dataset.models = "loading";
    try {
      const manifest = await loadManifest();
      const entries = PLAYERS.map(({ algorithm }) => manifest.models.find(
        (m) => m.task?.family === "glyphs" && m.algorithm === algorithm));
      if (entries.some((e) => !e)) throw new WidgetError("the site has no conv nets for the glyphs.");
      if (!this.index.model_size) throw new WidgetError("the glyph index has no 28×28 sheets for the models.");
      const { loadSession } = await import("../lib/ort-runner.js");
      const sessions = await Promise.all(entries.map((e) => loadSession(modelUrl(e))));
      this.models = entries.map((entry, i) => ({ ...PLAYERS[i], entry, session: sessions[i] }));
      this.root.dataset.models = "ready";
      if (this.round && !this.round.players) this.play(this.round);
    } catch (error) {
      this.modelError = error instanceof WidgetError ? error.message : `the models could not run (${error.message}).`;
      this.root.dataset.models = "error";
      this.players.replaceChildren(htmlElement("li", {}, `The models are not playing: ${this.modelError}`));
    }
  }

  /** Each model adapts to the round's support drawings and classifies its query. */
  async play(round) {
    try {
      return await this.answer(round);
    } catch (error) {
      const why = error instanceof WidgetError ? error.message : `the models could not run (${error.message}).`;
      if (this.round === round) this.players.replaceChildren(htmlElement("li", {}, `The models did not answer: ${why}`));
      this.root.dataset.modelsAnswered = "error";
      return null;
    }
  }

  async answer(round) {
    const size = this.index.model_size;
    const url = siteUrl(GLYPHS + this.sheetFile(round.alphabet)).href;
    const sheet = await sheetPixels(url, size);
    const area = size * size;
    const support = new Float32Array(round.way * area);
    round.classes.forEach((character, i) => cell(sheet, character, round.supportHand, support, i * area));
    const query = new Float32Array(area);
    cell(sheet, round.classes[round.answer], round.queryHand, query, 0);
    const labels = round.classes.map((_, i) => i);
    const { runGraph } = await import("../lib/ort-runner.js");
    const answers = [];
    for (const model of this.models) {
      const started = performance.now();
      const out = await runGraph(model.session, {
        support_images: { data: support, dims: [round.way, 1, size, size] },
        support_labels: { data: labels, dims: [round.way] },
        query_images: { data: query, dims: [1, 1, size, size] },
        inner_lr: { data: [model.entry.inner_lr], dims: [] },
      });
      const [rows, , classes] = out.probabilities.dims;
      const last = out.probabilities.data.subarray((rows - 1) * classes, rows * classes);
      const probabilities = Array.from(last.subarray(0, round.way));
      const answer = probabilities.indexOf(Math.max(...probabilities));
      answers.push({
        key: model.key, label: model.label, answer, confidence: probabilities[answer], probabilities,
        steps: rows - 1, ms: performance.now() - started,
      });
    }
    round.players = answers;
    if (round.chosen !== null) this.showPlayers(round);
    return answers;
  }

  /** The models' answers beside the reader's, counted once per answered round. */
  showPlayers(round) {
    if (this.round !== round || !round.players) return;
    this.players.replaceChildren(...round.players.map((p) => {
      const right = p.answer === round.answer;
      return htmlElement("li", { class: right ? "is-right" : "is-wrong" },
        `${p.label}: character ${p.answer + 1}, ${(100 * p.confidence).toFixed(0)}% sure after ` +
        `${p.steps} step${p.steps === 1 ? "" : "s"} on your ${round.way} examples — ${right ? "right" : "wrong"}.`);
    }));
    if (!round.counted) {
      round.counted = true;
      for (const p of round.players) recordPlayerAnswer(p.key, round.way, p.answer === round.answer);
    }
    this.root.dataset.modelsAnswered = "true";
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
    if (round.players) this.showPlayers(round);
    else if (this.models || this.root.dataset.models === "loading") {
      this.players.replaceChildren(htmlElement("li", {}, "The models are answering…"));
    }
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
    const players = scores.players;
    const versus = WAYS.map((way) => {
      const you = scores[way];
      const others = PLAYERS.map(({ key, label }) => {
        const s = players[key][way];
        return `${label} ${s.right}/${s.total}`;
      });
      return `${way}-way: you ${you.right}/${you.total} · ${others.join(" · ")}`;
    });
    this.versus.textContent = `You vs the models (right/answered; a model counts the rounds it played) — ${versus.join("; ")}`;
    for (const { key } of PLAYERS) {
      for (const way of WAYS) this.root.dataset[`${key}Score${way}`] = `${players[key][way].right}/${players[key][way].total}`;
    }
  }
}
FewShotQuiz.count = 0;
