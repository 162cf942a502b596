// The reader's running score in the few-shot quiz, kept in the browser.
//
// Stored in localStorage (one JSON object per site origin) so that it survives
// reloads; where storage is blocked (private modes, file policies) it lives in
// memory for the page. Every change is announced on window as the event
// SCORE_EVENT (detail: the scores), which the accuracy chart listens to; a
// change made in another tab arrives as a "storage" event.

export const WAYS = [5, 20];
/** The conv nets that play beside the reader (issue 13): manifest algorithm, score key, label. */
export const PLAYERS = [
  { algorithm: "maml", key: "maml", label: "MAML" },
  { algorithm: "pretrained", key: "pretrained", label: "Pretrained" },
];
export const SCORE_EVENT = "few-shot-quiz:score";
const KEY = "maml-site:few-shot-quiz";

let inMemory = null;

function emptyWays() {
  return Object.fromEntries(WAYS.map((way) => [way, { right: 0, total: 0 }]));
}

function empty() {
  return { ...emptyWays(), players: Object.fromEntries(PLAYERS.map(({ key }) => [key, emptyWays()])) };
}

function readWays(saved, into) {
  for (const way of WAYS) {
    const right = Number(saved?.[way]?.right);
    const total = Number(saved?.[way]?.total);
    if (Number.isInteger(right) && Number.isInteger(total) && right >= 0 && total >= right) {
      into[way] = { right, total };
    }
  }
}

/** {5: {right, total}, 20: {right, total}, players: {maml: {5, 20}, pretrained: {5, 20}}}
 * (the reader's, then the models' on the rounds they played); anything unreadable counts as no answers. */
export function readScores() {
  let text = inMemory;
  try {
    text = window.localStorage.getItem(KEY) ?? inMemory;
  } catch {
    // storage blocked: the in-memory copy is all there is
  }
  const scores = empty();
  try {
    const saved = JSON.parse(text ?? "{}");
    readWays(saved, scores);
    for (const { key } of PLAYERS) readWays(saved?.players?.[key], scores.players[key]);
  } catch {
    // a damaged entry starts again from zero
  }
  return scores;
}

function save(scores) {
  const text = JSON.stringify(scores);
  inMemory = text;
  try {
    window.localStorage.setItem(KEY, text);
  } catch {
    // storage blocked: kept in memory only
  }
  window.dispatchEvent(new CustomEvent(SCORE_EVENT, { detail: scores }));
  return scores;
}

/** Count one answer of a `way`-way round; returns the new scores. */
export function recordAnswer(way, right) {
  const scores = readScores();
  scores[way].total += 1;
  if (right) scores[way].right += 1;
  return save(scores);
}

/** Count one answer of a model (a PLAYERS key) to a `way`-way round. */
export function recordPlayerAnswer(key, way, right) {
  const scores = readScores();
  const score = scores.players[key][way];
  score.total += 1;
  if (right) score.right += 1;
  return save(scores);
}

export function resetScores() {
  return save(empty());
}

/** Accuracy in % of a {right, total} score, or null before the first answer. */
export function accuracy(score) {
  return score.total > 0 ? (100 * score.right) / score.total : null;
}

/** Call `listener(scores)` whenever the scores change, in this tab or another. */
export function onScoresChange(listener) {
  window.addEventListener(SCORE_EVENT, (event) => listener(event.detail));
  window.addEventListener("storage", (event) => {
    if (event.key === KEY || event.key === null) listener(readScores());
  });
}
