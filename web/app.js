/**
 * CORGI Live's writing page: choose constraints (forms generated from each checker's kwargs JSON
 * Schema, or a task preset from the paper), write a prompt, and watch the session stream over
 * socket.io: tokens, one verdict per constraint, the feedback turn, the final summary. Past
 * sessions replay from `GET /v1/sessions/:id`. Plain DOM, no framework, no build step.
 */

import { api, apiKey, askForApiKey } from './api.js';

// ---------------------------------------------------------------------------------------------
// DOM helpers

const $ = (id) => document.getElementById(id);

/** `h('li', {class: 'x', onclick}, child, 'text')`: an element; strings become text nodes (never HTML). */
function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function showError(element, message) {
  element.textContent = message ?? '';
  element.hidden = !message;
}

function announce(message) {
  $('announcer').textContent = message;
}

const formatScore = (score) => (typeof score === 'number' ? score.toFixed(2) : '–');

function formatTime(iso) {
  const date = new Date(iso);
  const sameDay = date.toDateString() === new Date().toDateString();
  return sameDay
    ? date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : date.toLocaleDateString([], { month: 'short', day: 'numeric' });
}

/** `{n: 3, last_word: "eyes"}` → `n 3 · last_word eyes`; a plain word list shows just its words. */
function summarizeKwargs(id, kwargs = {}) {
  const patterns = new Set(state.checkers.get(id)?.patternKwargs ?? []);
  return Object.entries(kwargs)
    .map(([name, value]) => {
      if (patterns.has(name)) return (Array.isArray(value) ? value : [value]).map(unescapePattern).join(', ');
      return `${fieldLabel(name)} ${Array.isArray(value) ? value.join(', ') : String(value)}`;
    })
    .join(' · ');
}

/** A checker's name in words ("No commas"), from `GET /v1/checkers`; its id until they load. */
function checkerLabel(id) {
  return state.checkers.get(id)?.label ?? id;
}

/** Kwarg names too short to read on their own. */
const FIELD_WORDS = { n: 'length in words', pos: 'parts of speech' };

/** `num_words` → "Number of words": kwarg names as a writer reads them. */
function fieldLabel(name) {
  const words = (FIELD_WORDS[name] ?? name)
    .replace(/^num_/, 'number of ')
    .replace(/^let_/, 'letter ')
    .replace(/^nth_/, '')
    .replaceAll('_', ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** Python `re` metacharacters: a plain word is escaped so the checker matches it literally. */
const PATTERN_SPECIALS = /[.^$*+?{}[\]\\|()]/g;
const escapePattern = (word) => word.replace(PATTERN_SPECIALS, '\\$&');
const unescapePattern = (pattern) => String(pattern).replace(/\\(.)/g, '$1');

// ---------------------------------------------------------------------------------------------
// Presets: the paper's tasks (examples from its test sets) and an IFEval combination.

const PRESETS = [
  {
    name: 'Numerical planning',
    hint: 'n words, given last word',
    prompt: '',
    constraints: [{ id: 'corgi:num_planning', kwargs: { n: 3, last_word: 'eyes', prefix: 'A look' } }],
  },
  {
    name: 'CommonGen concepts',
    hint: 'concepts as parts of speech',
    prompt: 'Write one sentence describing an everyday scene.',
    constraints: [
      {
        id: 'corgi:concepts',
        kwargs: { concepts: ['catch', 'dog', 'frisbee', 'throw'], pos: ['verb', 'noun', 'noun', 'verb'] },
      },
    ],
  },
  {
    name: 'Panagram',
    hint: 'one word from given letters',
    prompt: '',
    constraints: [{ id: 'corgi:panagram', kwargs: { letters: ['a', 'e', 'r', 'k', 'b'] } }],
  },
  {
    name: 'Sentiment',
    hint: 'a positive review',
    prompt: 'Write a two-sentence review of a neighbourhood café.',
    constraints: [{ id: 'corgi:sentiment', kwargs: { label: 'positive' } }],
  },
  {
    name: 'Story',
    hint: 'no repeated 4-word phrase',
    prompt: 'Continue the story: Tim went on his first fishing trip.',
    constraints: [{ id: 'corgi:no_repeat_ngram', kwargs: { n: 4 } }],
  },
  {
    name: 'IFEval combo',
    hint: '4 IFEval instructions',
    prompt: 'Write a short note to a friend about an evening walk along a river.',
    constraints: [
      { id: 'keywords:existence', kwargs: { keywords: ['river', 'lantern'] } },
      { id: 'punctuation:no_comma', kwargs: {} },
      { id: 'length_constraints:number_words', kwargs: { relation: 'at least', num_words: 40 } },
      { id: 'change_case:english_lowercase', kwargs: {} },
    ],
  },
];

// ---------------------------------------------------------------------------------------------
// State

/** What the page starts with, so the first Start needs no setup: a constraint anyone can read. */
const DEFAULT_CONSTRAINT = { id: 'keywords:existence', kwargs: { keywords: ['dog', 'park'] } };

const state = {
  /** id → {id, description, kwargsSchema} from `GET /v1/checkers`. */
  checkers: new Map(),
  /** The constraints the next session will carry: `[{id, kwargs}]`. */
  chosen: [structuredClone(DEFAULT_CONSTRAINT)],
  /** The prompt the last preset wrote, so a second preset may replace it but not the writer's own text. */
  presetPrompt: null,
  /** The live session: `{id, maxAttempts, attempts: Map, cancelRequested}` or null. */
  live: null,
  /** True between `session:start` and its ack. */
  starting: false,
  /** The session shown in the conversation (live or replayed). */
  shownSessionId: null,
};

// ---------------------------------------------------------------------------------------------
// Kwargs forms generated from JSON Schema

/** Unwraps `anyOf: [X, {type: "null"}]` (zod's optional/nullable) to X. */
function unwrapSchema(schema = {}) {
  const options = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(options)) {
    const real = options.filter((option) => option.type !== 'null');
    if (real.length === 1) return { ...real[0], description: schema.description ?? real[0].description };
    if (real.every((option) => 'const' in option || Array.isArray(option.enum))) {
      return {
        ...schema,
        enum: real.flatMap((option) => ('const' in option ? [option.const] : option.enum)),
      };
    }
  }
  return schema;
}

/** How a property is edited: enum, number, boolean, string, list (comma-separated), or raw JSON. */
function fieldKind(schema) {
  if (Array.isArray(schema.enum)) return 'enum';
  if (schema.type === 'integer' || schema.type === 'number') return 'number';
  if (schema.type === 'boolean') return 'boolean';
  if (schema.type === 'string') return 'string';
  if (schema.type === 'array') {
    const items = unwrapSchema(schema.items ?? {});
    if (items.type === 'string' || Array.isArray(items.enum)) return 'list';
    if (items.type === 'integer' || items.type === 'number') return 'number-list';
  }
  return 'json';
}

function fieldHint(schema, kind) {
  const parts = [];
  if (schema.description) parts.push(schema.description);
  if (kind === 'list' || kind === 'number-list') {
    const items = unwrapSchema(schema.items ?? {});
    parts.push(
      Array.isArray(items.enum)
        ? `Comma-separated, each one of: ${items.enum.join(', ')}.`
        : 'Comma-separated.',
    );
  }
  if (kind === 'json') parts.push('JSON value.');
  return parts.join(' ');
}

/** The form for one checker's kwargs; every input is labelled and tied to its hint and error. */
function renderKwargsForm(checker) {
  const container = $('kwargs-fields');
  container.replaceChildren();
  showError($('constraint-form-error'), null);
  $('checker-description').textContent = checker?.description ?? '';
  if (!checker) return;
  const schema = checker.kwargsSchema ?? {};
  const required = new Set(schema.required ?? []);
  const patterns = new Set(checker.patternKwargs ?? []);
  const properties = Object.entries(schema.properties ?? {});
  if (properties.length === 0) {
    container.append(h('p', { class: 'hint' }, 'No settings: this constraint takes no arguments.'));
    return;
  }
  for (const [name, raw] of properties) {
    const property = unwrapSchema(raw);
    const kind = fieldKind(property);
    const id = `kw-${name}`;
    const isPattern = patterns.has(name);
    // Pattern kwargs read as plain words; regular expressions only behind "Advanced".
    const hint = isPattern
      ? kind === 'list'
        ? 'Separate words with commas. Case does not matter.'
        : 'Case does not matter.'
      : fieldHint(property, kind);
    const describedBy = [hint ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(' ');
    const common = { id, name, 'aria-describedby': describedBy, dataset: { kind, field: name } };
    if (required.has(name)) common['aria-required'] = 'true';
    let input;
    if (kind === 'enum') {
      input = h(
        'select',
        common,
        required.has(name) ? null : h('option', { value: '' }, '(not set)'),
        property.enum.map((value) =>
          h('option', { value: JSON.stringify(value), selected: value === property.default }, String(value)),
        ),
      );
    } else if (kind === 'boolean') {
      input = h('input', { ...common, type: 'checkbox', checked: property.default === true });
    } else if (kind === 'number') {
      input = h('input', {
        ...common,
        type: 'number',
        inputmode: property.type === 'integer' ? 'numeric' : 'decimal',
        step: property.type === 'integer' ? '1' : 'any',
        min: property.minimum ?? property.exclusiveMinimum,
        max: Math.abs(property.maximum ?? 0) < 1e9 ? property.maximum : undefined,
        placeholder: property.default !== undefined ? `default ${property.default}` : undefined,
      });
    } else {
      input = h('input', {
        ...common,
        type: 'text',
        autocomplete: 'off',
        spellcheck: kind === 'string' ? 'true' : 'false',
        placeholder:
          property.default !== undefined && property.default !== ''
            ? `default ${Array.isArray(property.default) ? property.default.join(', ') : property.default}`
            : isPattern && kind === 'list'
              ? 'dog, park'
              : kind === 'list' || kind === 'number-list'
                ? 'a, b, c'
                : undefined,
      });
    }
    const advanced = isPattern
      ? h(
          'details',
          { class: 'advanced' },
          h('summary', {}, 'Advanced'),
          h(
            'label',
            { class: 'check-label', for: `${id}-regex` },
            h('input', { type: 'checkbox', id: `${id}-regex` }),
            ' Treat as regular expressions (Python syntax, as IFEval does)',
          ),
        )
      : null;
    container.append(
      h(
        'div',
        { class: `field${kind === 'boolean' ? ' field-inline' : ''}` },
        h(
          'label',
          { class: 'field-label', for: id },
          isPattern ? (kind === 'list' ? 'Words' : 'Word') : fieldLabel(name),
          required.has(name) ? null : h('span', { class: 'optional' }, 'optional'),
        ),
        input,
        hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null,
        advanced,
        h('p', { class: 'field-error', id: `${id}-error`, hidden: true }),
      ),
    );
  }
}

/** Reads the generated form: `{kwargs}` or `{errors: {field: message}}` for what the browser can tell. */
function readKwargsForm(checker) {
  const kwargs = {};
  const errors = {};
  const required = new Set(checker.kwargsSchema?.required ?? []);
  const patterns = new Set(checker.patternKwargs ?? []);
  for (const input of $('kwargs-fields').querySelectorAll('[data-field]')) {
    const name = input.dataset.field;
    const kind = input.dataset.kind;
    const literal = patterns.has(name) && !$(`kw-${name}-regex`)?.checked;
    const asWritten = (text) => (literal ? escapePattern(text) : text);
    if (kind === 'boolean') {
      kwargs[name] = input.checked;
      continue;
    }
    const text = input.value.trim();
    if (text === '') {
      if (required.has(name)) errors[name] = `${name}: required`;
      continue;
    }
    if (kind === 'enum') kwargs[name] = JSON.parse(text);
    else if (kind === 'number') {
      const value = Number(text);
      if (!Number.isFinite(value)) errors[name] = `${name}: expected a number, got "${text}"`;
      else kwargs[name] = value;
    } else if (kind === 'list') {
      kwargs[name] = text
        .split(',')
        .map((item) => item.trim())
        .filter(Boolean)
        .map(asWritten);
    } else if (kind === 'number-list') {
      const values = text.split(',').map((item) => Number(item.trim()));
      if (values.some((value) => !Number.isFinite(value)))
        errors[name] = `${name}: expected numbers, got "${text}"`;
      else kwargs[name] = values;
    } else if (kind === 'json') {
      try {
        kwargs[name] = JSON.parse(text);
      } catch {
        errors[name] = `${name}: expected a JSON value`;
      }
    } else kwargs[name] = asWritten(input.value);
  }
  return Object.keys(errors).length > 0 ? { errors } : { kwargs };
}

function clearFieldErrors() {
  for (const element of $('kwargs-fields').querySelectorAll('.field-error')) showError(element, null);
  for (const element of $('kwargs-fields').querySelectorAll('[aria-invalid]'))
    element.removeAttribute('aria-invalid');
  showError($('constraint-form-error'), null);
}

/** Shows `message` under the kwargs field it names (`...kwargs.letters[0]: ...`), else under the form. */
function showKwargsError(field, message) {
  const input = field ? $(`kw-${field}`) : null;
  if (input) {
    input.setAttribute('aria-invalid', 'true');
    showError($(`kw-${field}-error`), message);
    input.focus();
  } else {
    showError($('constraint-form-error'), message);
  }
}

async function addConstraintFromForm(event) {
  event.preventDefault();
  const checker = state.checkers.get($('checker-select').value);
  if (!checker) return;
  clearFieldErrors();
  const read = readKwargsForm(checker);
  if (read.errors) {
    const [first] = Object.entries(read.errors);
    for (const [field, message] of Object.entries(read.errors)) showKwargsError(field, message);
    $(`kw-${first[0]}`)?.focus();
    return;
  }
  const spec = { id: checker.id, kwargs: read.kwargs };
  const candidate = [...state.chosen, spec];
  // The server's own validation: kwargs schema and IFEval's conflict table, with the field named.
  const button = $('add-constraint');
  button.disabled = true;
  try {
    await api('/v1/check', { method: 'POST', body: { response: '', constraints: candidate } });
  } catch (error) {
    const index = candidate.length - 1;
    const ownField = new RegExp(`^constraints\\[${index}\\]\\.kwargs\\.([A-Za-z0-9_]+)`).exec(error.message);
    showKwargsError(ownField?.[1], error.message);
    return;
  } finally {
    button.disabled = false;
  }
  state.chosen = candidate;
  renderChosen();
  renderKwargsForm(checker);
  announce(`Added "${checker.label}". ${state.chosen.length} constraints chosen.`);
}

// ---------------------------------------------------------------------------------------------
// Chosen constraints and presets

function renderChosen(invalidIndex = -1, message = null) {
  const list = $('chosen-constraints');
  list.replaceChildren(
    ...state.chosen.map((constraint, index) =>
      h(
        'li',
        { class: `chip${index === invalidIndex ? ' invalid' : ''}`, dataset: { id: constraint.id } },
        h(
          'div',
          { class: 'chip-body' },
          h('span', { class: 'chip-label', title: constraint.id }, checkerLabel(constraint.id)),
          Object.keys(constraint.kwargs ?? {}).length > 0
            ? h('span', { class: 'chip-kwargs' }, summarizeKwargs(constraint.id, constraint.kwargs))
            : null,
          index === invalidIndex && message ? h('span', { class: 'chip-error' }, message) : null,
        ),
        h(
          'button',
          {
            type: 'button',
            class: 'icon-button',
            'aria-label': `Remove "${checkerLabel(constraint.id)}"`,
            title: 'Remove',
            onclick: () => {
              state.chosen.splice(index, 1);
              renderChosen();
              announce(`Removed "${checkerLabel(constraint.id)}".`);
            },
          },
          '×',
        ),
      ),
    ),
  );
  $('chosen-count').textContent = String(state.chosen.length);
  $('chosen-empty').hidden = state.chosen.length > 0;
  if (invalidIndex < 0) showError($('constraints-error'), null);
}

function renderPresets() {
  $('presets').replaceChildren(
    ...PRESETS.map((preset) => {
      const missing = preset.constraints.map((c) => c.id).filter((id) => !state.checkers.has(id));
      return h(
        'button',
        {
          type: 'button',
          class: 'preset',
          disabled: missing.length > 0,
          title:
            missing.length > 0
              ? `This server has no checker ${missing.join(', ')}`
              : preset.constraints.map((c) => checkerLabel(c.id)).join(' + '),
          onclick: () => applyPreset(preset),
        },
        h('span', { class: 'preset-name' }, preset.name),
        h('span', { class: 'preset-hint' }, preset.hint),
      );
    }),
  );
}

function applyPreset(preset) {
  state.chosen = structuredClone(preset.constraints);
  renderChosen();
  const prompt = $('prompt');
  if (prompt.value.trim() === '' || prompt.value === state.presetPrompt) {
    prompt.value = preset.prompt;
    state.presetPrompt = preset.prompt;
  }
  announce(`${preset.name}: ${preset.constraints.length} constraints chosen.`);
}

async function loadCheckers() {
  const select = $('checker-select');
  try {
    const { checkers } = await api('/v1/checkers');
    state.checkers = new Map(checkers.map((checker) => [checker.id, checker]));
    // The paper's tasks first, then IFEval's families.
    const groups = new Map();
    for (const checker of checkers) {
      const family = checker.id.startsWith('corgi:') ? 'Tasks from the CORGI paper' : 'IFEval instructions';
      if (!groups.has(family)) groups.set(family, []);
      groups.get(family).push(checker);
    }
    const ordered = [...groups.entries()].sort(([a], [b]) =>
      a === 'IFEval instructions' ? -1 : b === 'IFEval instructions' ? 1 : 0,
    );
    select.replaceChildren(
      ...ordered.map(([family, members]) =>
        h(
          'optgroup',
          { label: family },
          members.map((checker) =>
            h('option', { value: checker.id, selected: checker.id === DEFAULT_CONSTRAINT.id }, checker.label),
          ),
        ),
      ),
    );
    renderKwargsForm(state.checkers.get(select.value));
    renderPresets();
    renderChosen();
  } catch (error) {
    select.replaceChildren(h('option', { value: '' }, 'Checkers unavailable'));
    showError($('constraint-form-error'), `Could not load checkers: ${error.message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The conversation

const conversation = $('conversation');

/** Keeps the newest text in view unless the writer scrolled up to read. */
function stickToBottom(update) {
  const nearBottom = conversation.scrollHeight - conversation.scrollTop - conversation.clientHeight < 80;
  update();
  if (nearBottom) conversation.scrollTop = conversation.scrollHeight;
}

function clearConversation(meta = '') {
  conversation.replaceChildren();
  $('conversation-meta').textContent = meta;
}

function renderConstraintTags(constraints) {
  return h(
    'ul',
    { class: 'tags', 'aria-label': 'Constraints' },
    constraints.map((c) =>
      h(
        'li',
        { class: 'tag' },
        h('span', { class: 'tag-label', title: c.id }, checkerLabel(c.id)),
        Object.keys(c.kwargs ?? {}).length > 0 ? `: ${summarizeKwargs(c.id, c.kwargs)}` : null,
      ),
    ),
  );
}

function renderInstruction(text, constraints) {
  stickToBottom(() =>
    conversation.append(
      h(
        'article',
        { class: 'message user', 'aria-label': 'Instruction' },
        h(
          'header',
          { class: 'message-head' },
          h('span', { class: 'who' }, 'You'),
          h('span', { class: 'role' }, 'instruction'),
        ),
        text
          ? h('p', { class: 'message-text' }, text)
          : h('p', { class: 'message-text muted' }, '(no prompt: the constraints are the instruction)'),
        renderConstraintTags(constraints),
      ),
    ),
  );
}

/** An attempt bubble; its text grows token by token through the returned Text node. */
function renderAttemptStart({ attempt, policyVersion }, maxAttempts) {
  const text = document.createTextNode('');
  const body = h('div', { class: 'message-text attempt-text streaming' }, text);
  const article = h(
    'article',
    { class: 'message assistant attempt', dataset: { attempt }, 'aria-label': `Attempt ${attempt}` },
    h(
      'header',
      { class: 'message-head' },
      h(
        'span',
        { class: 'who' },
        `Attempt ${attempt}`,
        maxAttempts ? h('span', { class: 'of' }, ` of ${maxAttempts}`) : null,
      ),
      policyVersion ? h('span', { class: 'badge subtle', title: 'Policy version' }, policyVersion) : null,
      h('span', { class: 'attempt-status', role: 'status' }, 'writing…'),
    ),
    body,
  );
  stickToBottom(() => conversation.append(article));
  return { article, body, text };
}

/** The verdicts of `check` (the check result contract) under an attempt. */
function renderVerdicts(check) {
  const results = check?.results ?? [];
  const met = results.filter((r) => r.ok).length;
  return h(
    'section',
    { class: `verdicts ${check?.ok ? 'ok' : 'fail'}`, 'aria-label': 'Verdicts' },
    h(
      'p',
      { class: 'verdict-summary' },
      h('strong', {}, check?.ok ? 'All constraints met' : `${met} of ${results.length} constraints met`),
      h('span', { class: 'score' }, `score ${formatScore(check?.score)}`),
    ),
    h(
      'ul',
      { class: 'verdict-list' },
      results.map((result) =>
        h(
          'li',
          { class: `verdict ${result.ok ? 'ok' : 'fail'}`, dataset: { id: result.id } },
          h('span', { class: 'mark', 'aria-hidden': 'true' }, result.ok ? '✓' : '✗'),
          h('span', { class: 'visually-hidden' }, result.ok ? 'Met: ' : 'Not met: '),
          h('span', { class: 'verdict-label', title: result.id }, checkerLabel(result.id)),
          h('span', { class: 'score' }, formatScore(result.score)),
          result.feedback ? h('p', { class: 'verdict-feedback' }, result.feedback) : null,
        ),
      ),
    ),
  );
}

function finishAttempt(view, { attempt, text, check }) {
  Object.assign(view, { attempt, check, finalText: text });
  view.text.data = text;
  view.body.classList.remove('streaming');
  view.article.classList.add(check?.ok ? 'ok' : 'fail');
  view.article.querySelector('.attempt-status').textContent = check?.ok ? 'met' : 'fell short';
  stickToBottom(() => view.article.append(renderVerdicts(check)));
}

function renderFeedback(text) {
  stickToBottom(() =>
    conversation.append(
      h(
        'article',
        { class: 'message user feedback', 'aria-label': 'Feedback turn' },
        h(
          'header',
          { class: 'message-head' },
          h('span', { class: 'who' }, 'Checker'),
          h('span', { class: 'role' }, 'feedback turn'),
        ),
        h('p', { class: 'message-text' }, text),
      ),
    ),
  );
}

function renderNote(text, kind = 'info') {
  stickToBottom(() =>
    conversation.append(h('p', { class: `note ${kind}`, role: kind === 'error' ? 'alert' : null }, text)),
  );
}

/**
 * The session's answer, as the API picks it: the first attempt that met every constraint, else the
 * best-scoring one (the earliest of equals). `views` are finished attempts `{attempt, finalText, check}`.
 */
function pickBest(views) {
  const done = views.filter((view) => view.check);
  return (
    done.find((view) => view.check.ok) ??
    done.reduce((best, view) => (best && best.check.score >= view.check.score ? best : view), null)
  );
}

/** The summary card: the best attempt's text, the outcome, and the rating widget. */
function renderSummary({
  sessionId,
  ok,
  bestScore,
  attempts,
  status = 'completed',
  action = null,
  best = null,
}) {
  const headline =
    status === 'cancelled'
      ? `Stopped after ${attempts} attempt${attempts === 1 ? '' : 's'}`
      : status === 'failed'
        ? 'The session failed'
        : status === 'running'
          ? 'Still running'
          : ok
            ? `All constraints met on attempt ${attempts}`
            : `Not all constraints met after ${attempts} attempt${attempts === 1 ? '' : 's'}`;
  const card = h(
    'section',
    { class: `summary ${ok ? 'ok' : 'fail'}`, 'aria-label': 'Session summary', dataset: { sessionId } },
    h(
      'div',
      { class: 'summary-head' },
      h('span', { class: 'summary-mark', 'aria-hidden': 'true' }, ok ? '✓' : '✗'),
      h(
        'div',
        {},
        h('h3', {}, headline),
        h(
          'p',
          { class: 'meta' },
          `best score ${formatScore(bestScore)} · ${attempts} attempt${attempts === 1 ? '' : 's'}`,
        ),
      ),
      action,
    ),
    best
      ? h(
          'figure',
          { class: 'best' },
          h(
            'figcaption',
            {},
            ok
              ? `The answer (attempt ${best.attempt})`
              : `Best attempt (${best.attempt}, score ${formatScore(best.check.score)})`,
          ),
          h('blockquote', { class: 'best-text' }, best.finalText),
        )
      : null,
    status === 'completed' || status === 'cancelled' ? renderRating(sessionId) : null,
  );
  stickToBottom(() => conversation.append(card));
  return card;
}

const RATING_LABELS = { '-1': 'Bad', 0: 'Poor', 1: '1', 2: '2', 3: '3', 4: '4', 5: 'Great' };

function renderRating(sessionId) {
  const status = h('p', { class: 'rating-status', role: 'status' });
  const error = h('p', { class: 'field-error', role: 'alert', hidden: true });
  const buttons = [-1, 0, 1, 2, 3, 4, 5].map((rating) =>
    h(
      'button',
      {
        type: 'button',
        class: 'rating-button',
        'aria-pressed': 'false',
        'aria-label': `Rate ${rating}${rating === -1 ? ' (bad)' : rating === 5 ? ' (great)' : ''}`,
        dataset: { rating },
        onclick: async (event) => {
          const button = event.currentTarget;
          for (const other of buttons) other.disabled = true;
          showError(error, null);
          try {
            await api(`/v1/sessions/${sessionId}/rating`, { method: 'POST', body: { rating } });
            for (const other of buttons) other.setAttribute('aria-pressed', String(other === button));
            status.textContent = `Thanks: rated ${rating}.`;
          } catch (failure) {
            showError(error, failure.message);
          } finally {
            for (const other of buttons) other.disabled = false;
          }
        },
      },
      rating === -1 ? '−1' : String(rating),
    ),
  );
  return h(
    'fieldset',
    { class: 'rating' },
    h('legend', {}, 'Rate the result'),
    h(
      'div',
      { class: 'rating-scale' },
      h('span', { class: 'hint' }, RATING_LABELS['-1']),
      buttons,
      h('span', { class: 'hint' }, RATING_LABELS[5]),
    ),
    status,
    error,
  );
}

// ---------------------------------------------------------------------------------------------
// Live sessions over socket.io

const socket = window.io({ auth: apiKey ? { token: apiKey } : {}, transports: ['websocket', 'polling'] });

function setConnection(state, text) {
  const element = $('connection');
  element.dataset.state = state;
  element.textContent = text;
}

socket.on('connect', () => setConnection('up', 'connected'));
socket.on('disconnect', () => setConnection('down', 'reconnecting…'));
socket.on('connect_error', (error) => {
  setConnection('down', `offline: ${error.message}`);
  if (error.data?.code === 'unauthorized') askForApiKey(error.message);
});
socket.on('policy:swap', ({ version }) => {
  $('policy-version').textContent = `policy ${version}`;
});

const isLive = (data) => state.live && data.sessionId === state.live.id;

socket.on('attempt:start', (data) => {
  if (!isLive(data)) return;
  state.live.current = renderAttemptStart(data, state.live.maxAttempts);
  state.live.attempts.set(data.attempt, state.live.current);
});

socket.on('token', (data) => {
  if (!isLive(data)) return;
  const view = state.live.attempts.get(data.attempt);
  if (view) stickToBottom(() => view.text.appendData(data.text));
});

socket.on('attempt:end', (data) => {
  if (!isLive(data)) return;
  const view = state.live.attempts.get(data.attempt);
  if (!view) return;
  finishAttempt(view, data);
  announce(
    `Attempt ${data.attempt}: ${data.check?.ok ? 'all constraints met' : 'fell short'}, score ${formatScore(data.check?.score)}.`,
  );
});

socket.on('feedback', (data) => {
  if (isLive(data)) renderFeedback(data.text);
});

socket.on('session:end', (data) => {
  if (!isLive(data)) return;
  const status = state.live.cancelRequested && !data.ok ? 'cancelled' : 'completed';
  renderSummary({ ...data, status, best: pickBest([...state.live.attempts.values()]) });
  announce(
    data.ok
      ? `Done: all constraints met on attempt ${data.attempts}.`
      : `Done after ${data.attempts} attempts.`,
  );
  endLive();
  loadHistory();
});

socket.on('session:error', (data) => {
  if (data.sessionId && isLive(data)) {
    renderNote(`${data.code}: ${data.message}`, 'error');
    endLive();
    loadHistory();
  }
  // Without a sessionId it is a refused `session:start`, which its ack already reported next to the field.
});

function setRunning(running) {
  $('start').disabled = running;
  $('start').textContent = running ? 'Running…' : 'Start';
  $('cancel').hidden = !running;
  $('composer').setAttribute('aria-busy', String(running));
}

function endLive() {
  state.live = null;
  setRunning(false);
}

const FIELD_INPUTS = { prompt: 'prompt', maxAttempts: 'max-attempts', 'sampling.temperature': 'temperature' };

function clearStartErrors() {
  for (const id of ['prompt', 'max-attempts', 'temperature']) {
    $(id).removeAttribute('aria-invalid');
    showError($(`${id}-error`), null);
  }
  showError($('start-error'), null);
  showError($('constraints-error'), null);
  renderChosen();
}

/** Puts a `field: message` error next to the field it names (prompt, settings, a chosen constraint). */
function showStartError(message) {
  const field = /^([\w.[\]]+):/.exec(message)?.[1] ?? '';
  const constraint = /^constraints(?:\[(\d+)\])?/.exec(field);
  if (FIELD_INPUTS[field]) {
    const input = $(FIELD_INPUTS[field]);
    input.setAttribute('aria-invalid', 'true');
    showError($(`${FIELD_INPUTS[field]}-error`), message);
    input.focus();
  } else if (constraint) {
    if (constraint[1] !== undefined) renderChosen(Number(constraint[1]), message);
    showError($('constraints-error'), message);
  } else {
    showError($('start-error'), message);
  }
}

function startSession(event) {
  event?.preventDefault();
  if (state.live || state.starting) return;
  clearStartErrors();
  if (state.chosen.length === 0) {
    showError(
      $('constraints-error'),
      'constraints: add at least one constraint (a task preset or the form above)',
    );
    $('checker-select').focus();
    return;
  }
  const prompt = $('prompt').value;
  const maxAttempts = Number($('max-attempts').value || 4);
  const temperatureText = $('temperature').value.trim();
  const sampling = temperatureText === '' ? {} : { temperature: Number(temperatureText) };
  const constraints = structuredClone(state.chosen);
  const payload = { prompt, constraints, maxAttempts, sampling };

  state.starting = true;
  setRunning(true);
  socket.timeout(10_000).emit('session:start', payload, (timeout, ack) => {
    state.starting = false;
    if (timeout || !ack) {
      showStartError('The server did not answer: check the connection and try again.');
      setRunning(false);
      return;
    }
    if (ack.error) {
      showStartError(ack.error.message);
      setRunning(false);
      return;
    }
    state.live = { id: ack.sessionId, maxAttempts, attempts: new Map(), cancelRequested: false };
    state.shownSessionId = ack.sessionId;
    clearConversation(`session ${ack.sessionId.slice(0, 8)} · live`);
    renderInstruction(prompt.trim(), constraints);
    markActiveHistory();
  });
}

function cancelSession() {
  if (!state.live) return;
  state.live.cancelRequested = true;
  socket.emit('session:cancel', { sessionId: state.live.id });
  $('cancel').disabled = true;
  setTimeout(() => {
    $('cancel').disabled = false;
  }, 500);
}

// ---------------------------------------------------------------------------------------------
// History: past sessions, replayed from their stored turns

async function loadHistory() {
  try {
    const { sessions } = await api('/v1/sessions?limit=50');
    showError($('history-error'), null);
    $('history-empty').hidden = sessions.length > 0;
    $('history').replaceChildren(
      ...sessions.map((session) =>
        h(
          'li',
          {},
          h(
            'button',
            {
              type: 'button',
              class: `history-item ${session.status === 'completed' ? (session.ok ? 'ok' : 'fail') : session.status}`,
              dataset: { id: session.id },
              onclick: () => replaySession(session.id),
            },
            h(
              'span',
              { class: 'history-mark', 'aria-hidden': 'true' },
              session.status === 'running' ? '…' : session.ok ? '✓' : '✗',
            ),
            h(
              'span',
              { class: 'history-body' },
              h(
                'span',
                { class: 'history-title' },
                session.prompt?.trim() || session.constraintIds.map(checkerLabel).join(' + '),
              ),
              h(
                'span',
                { class: 'history-meta' },
                `${formatTime(session.createdAt)} · ${session.attempts} attempt${session.attempts === 1 ? '' : 's'} · ${session.status === 'completed' ? `best ${formatScore(session.bestScore)}` : session.status}`,
              ),
            ),
          ),
        ),
      ),
    );
    markActiveHistory();
  } catch (error) {
    showError($('history-error'), `Could not load history: ${error.message}`);
  }
}

function markActiveHistory() {
  for (const button of $('history').querySelectorAll('.history-item')) {
    if (button.dataset.id === state.shownSessionId) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
  }
}

async function replaySession(sessionId) {
  if (state.live) {
    showError($('start-error'), 'A session is running: stop it before opening another one.');
    return;
  }
  let session;
  try {
    session = await api(`/v1/sessions/${sessionId}`);
  } catch (error) {
    showError($('history-error'), error.message);
    return;
  }
  state.shownSessionId = session.id;
  markActiveHistory();
  clearConversation(`session ${session.id.slice(0, 8)} · ${new Date(session.createdAt).toLocaleString()}`);
  const views = [];
  for (const turn of session.turns) {
    if (turn.kind === 'instruction') renderInstruction(turn.text, session.constraints);
    else if (turn.kind === 'feedback') renderFeedback(turn.text);
    else {
      const view = renderAttemptStart(turn, session.maxAttempts);
      views.push(view);
      if (turn.check) finishAttempt(view, turn);
      else {
        // A cancelled attempt has no verdict.
        view.text.data = turn.text;
        view.body.classList.remove('streaming');
        view.article.querySelector('.attempt-status').textContent = 'cancelled';
      }
    }
  }
  if (session.error) renderNote(`${session.error.code}: ${session.error.message}`, 'error');
  renderSummary({
    best: pickBest(views),
    sessionId: session.id,
    ok: session.ok === true,
    bestScore: session.bestScore,
    attempts: session.attempts,
    status: session.status,
    action: h(
      'button',
      {
        type: 'button',
        class: 'btn small summary-action',
        onclick: () => {
          state.chosen = structuredClone(session.constraints);
          renderChosen();
          $('prompt').value = session.prompt ?? '';
          $('prompt').focus();
          announce(`Loaded this session's prompt and ${session.constraints.length} constraints.`);
        },
      },
      'Reuse prompt and constraints',
    ),
  });
  conversation.scrollTop = 0;
  announce(`Opened the session from ${formatTime(session.createdAt)}.`);
}

// ---------------------------------------------------------------------------------------------
// Wiring

$('constraint-form').addEventListener('submit', addConstraintFromForm);
$('checker-select').addEventListener('change', (event) =>
  renderKwargsForm(state.checkers.get(event.target.value)),
);
$('composer').addEventListener('submit', startSession);
$('cancel').addEventListener('click', cancelSession);
$('refresh-history').addEventListener('click', loadHistory);
// Ctrl+Enter (Cmd+Enter on a Mac) starts from anywhere on the page; Escape stops a running session.
document.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) startSession(event);
  else if (event.key === 'Escape' && state.live) cancelSession();
});

api('/v1/policy')
  .then(({ version }) => {
    $('policy-version').textContent = `policy ${version}`;
  })
  .catch(() => {
    $('policy-version').textContent = 'policy unknown';
  });
renderChosen();
loadCheckers();
loadHistory();
