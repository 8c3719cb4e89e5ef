import { createHash } from 'node:crypto';
import YAML from 'yaml';

/**
 * A small renderer for the subset of Go templates + Sprig that the chart uses, so the chart can be
 * rendered and checked without Helm (which cannot be installed here). It implements: text, actions
 * with `{{-`/`-}}` trimming, comments, pipelines, variables (`:=`, `=`), `if`/`else if`/`else`,
 * `range` (lists, maps, with one or two variables), `with`, `define` + `include`, and the functions
 * listed in FUNCTIONS with Sprig's semantics. Anything else (an unknown function or keyword) is an
 * error, never silently ignored, so a template that outgrows the subset fails the tests instead of
 * rendering something Helm would not.
 */

export class TemplateError extends Error {
  override readonly name = 'TemplateError';
}

type Value = unknown;

// ---------------------------------------------------------------------------------------------
// Lexing: split into text and actions, applying the trim markers.

type Piece = { kind: 'text'; text: string } | { kind: 'action'; source: string; at: number };

function split(source: string, file: string): Piece[] {
  const pieces: Piece[] = [];
  let pos = 0;
  let trimNextLeft = false;
  while (pos < source.length) {
    const open = source.indexOf('{{', pos);
    let text = open < 0 ? source.slice(pos) : source.slice(pos, open);
    if (trimNextLeft) text = text.replace(/^\s+/, '');
    trimNextLeft = false;
    if (open < 0) {
      pieces.push({ kind: 'text', text });
      break;
    }
    let start = open + 2;
    if (/^-\s/.test(source.slice(start, start + 2))) {
      text = text.replace(/\s+$/, '');
      start += 1;
    }
    pieces.push({ kind: 'text', text });
    const close = findClose(source, start, file);
    let end = close;
    if (/\s-$/.test(source.slice(close - 2, close))) {
      end = close - 1;
      trimNextLeft = true;
    }
    pieces.push({ kind: 'action', source: source.slice(start, end).trim(), at: open });
    pos = close + 2;
  }
  return pieces;
}

/** Finds the `}}` closing an action, skipping string literals and comments. */
function findClose(source: string, from: number, file: string): number {
  let i = from;
  while (i < source.length) {
    const c = source[i];
    if (source.startsWith('/*', i)) {
      const end = source.indexOf('*/', i + 2);
      if (end < 0) break;
      i = end + 2;
    } else if (c === '"' || c === '`') {
      i += 1;
      while (i < source.length && source[i] !== c) i += c === '"' && source[i] === '\\' ? 2 : 1;
      i += 1;
    } else if (source.startsWith('}}', i)) {
      return i;
    } else {
      i += 1;
    }
  }
  throw new TemplateError(`${file}: unclosed action`);
}

// ---------------------------------------------------------------------------------------------
// Tokens and expressions inside an action.

type Token =
  | { t: 'str'; v: string }
  | { t: 'num'; v: number }
  | { t: 'field'; v: string[] }
  | { t: 'var'; name: string; path: string[] }
  | { t: 'ident'; v: string }
  | { t: 'punct'; v: '(' | ')' | '|' | ':=' | '=' | ',' };

function tokenize(src: string, where: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const path = (): string[] => {
    const parts: string[] = [];
    while (src[i] === '.' && /[A-Za-z_]/.test(src[i + 1] ?? '')) {
      const m = /^\.([A-Za-z_][A-Za-z0-9_]*)/.exec(src.slice(i));
      parts.push(m![1]!);
      i += m![0].length;
    }
    return parts;
  };
  while (i < src.length) {
    const c = src[i]!;
    const rest = src.slice(i);
    if (/\s/.test(c)) {
      i += 1;
    } else if (c === '"') {
      const m = /^"(?:[^"\\]|\\.)*"/.exec(rest);
      if (!m) throw new TemplateError(`${where}: bad string`);
      out.push({ t: 'str', v: JSON.parse(m[0]) as string });
      i += m[0].length;
    } else if (c === '`') {
      const end = src.indexOf('`', i + 1);
      out.push({ t: 'str', v: src.slice(i + 1, end) });
      i = end + 1;
    } else if (/^-?\d/.test(rest)) {
      const m = /^-?\d+(\.\d+)?/.exec(rest)!;
      out.push({ t: 'num', v: Number(m[0]) });
      i += m[0].length;
    } else if (c === '.') {
      if (/[A-Za-z_]/.test(src[i + 1] ?? '')) out.push({ t: 'field', v: path() });
      else {
        out.push({ t: 'field', v: [] });
        i += 1;
      }
    } else if (c === '$') {
      const m = /^\$[A-Za-z0-9_]*/.exec(rest)!;
      i += m[0].length;
      out.push({ t: 'var', name: m[0], path: path() });
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest)!;
      out.push({ t: 'ident', v: m[0] });
      i += m[0].length;
    } else if (rest.startsWith(':=')) {
      out.push({ t: 'punct', v: ':=' });
      i += 2;
    } else if ('()|=,'.includes(c)) {
      out.push({ t: 'punct', v: c as '(' | ')' | '|' | '=' | ',' });
      i += 1;
    } else {
      throw new TemplateError(`${where}: unexpected character ${JSON.stringify(c)}`);
    }
  }
  return out;
}

type Operand =
  | { k: 'lit'; v: Value }
  | { k: 'field'; path: string[] }
  | { k: 'var'; name: string; path: string[] }
  | { k: 'fn'; name: string }
  | { k: 'sub'; pipe: Pipeline };
type Command = Operand[];
interface Pipeline {
  decl?: { names: string[]; assign: boolean };
  cmds: Command[];
}

function parsePipeline(tokens: Token[], where: string): Pipeline {
  let pos = 0;
  const pipe: Pipeline = { cmds: [] };
  // Variable declaration: `$a :=` or `$i, $v :=` or `$a =`.
  const declEnd = tokens.findIndex((tok) => tok.t === 'punct' && (tok.v === ':=' || tok.v === '='));
  if (
    declEnd > 0 &&
    tokens.slice(0, declEnd).every((tok) => tok.t === 'var' || (tok.t === 'punct' && tok.v === ','))
  ) {
    const names = tokens.slice(0, declEnd).flatMap((tok) => (tok.t === 'var' ? [tok.name] : []));
    pipe.decl = { names, assign: (tokens[declEnd] as { v: string }).v === '=' };
    pos = declEnd + 1;
  }
  const parseCommand = (): Command => {
    const cmd: Command = [];
    while (pos < tokens.length) {
      const tok = tokens[pos]!;
      if (tok.t === 'punct' && (tok.v === '|' || tok.v === ')')) break;
      pos += 1;
      if (tok.t === 'str' || tok.t === 'num') cmd.push({ k: 'lit', v: tok.v });
      else if (tok.t === 'field') cmd.push({ k: 'field', path: tok.v });
      else if (tok.t === 'var') cmd.push({ k: 'var', name: tok.name, path: tok.path });
      else if (tok.t === 'ident') {
        if (tok.v === 'true' || tok.v === 'false') cmd.push({ k: 'lit', v: tok.v === 'true' });
        else if (tok.v === 'nil') cmd.push({ k: 'lit', v: null });
        else cmd.push({ k: 'fn', name: tok.v });
      } else if (tok.t === 'punct' && tok.v === '(') {
        const inner: Pipeline = { cmds: [parseCommand()] };
        while (tokens[pos]?.t === 'punct' && (tokens[pos] as { v: string }).v === '|') {
          pos += 1;
          inner.cmds.push(parseCommand());
        }
        const close = tokens[pos];
        if (!close || close.t !== 'punct' || close.v !== ')') throw new TemplateError(`${where}: missing )`);
        pos += 1;
        cmd.push({ k: 'sub', pipe: inner });
      } else throw new TemplateError(`${where}: unexpected token ${JSON.stringify(tok)}`);
    }
    if (cmd.length === 0) throw new TemplateError(`${where}: empty command`);
    return cmd;
  };
  pipe.cmds.push(parseCommand());
  while (pos < tokens.length) {
    const tok = tokens[pos]!;
    if (tok.t === 'punct' && tok.v === '|') {
      pos += 1;
      pipe.cmds.push(parseCommand());
    } else throw new TemplateError(`${where}: unexpected ${JSON.stringify(tok)}`);
  }
  return pipe;
}

// ---------------------------------------------------------------------------------------------
// Tree.

type Node =
  | { n: 'text'; text: string }
  | { n: 'out'; pipe: Pipeline }
  | { n: 'if'; branches: { cond: Pipeline; body: Node[] }[]; otherwise: Node[] }
  | { n: 'range'; pipe: Pipeline; body: Node[]; otherwise: Node[] }
  | { n: 'with'; pipe: Pipeline; body: Node[]; otherwise: Node[] };

interface Parsed {
  nodes: Node[];
  defines: Map<string, Node[]>;
}

function parse(source: string, file: string): Parsed {
  const pieces = split(source, file);
  const defines = new Map<string, Node[]>();
  let i = 0;
  const lineOf = (at: number) => source.slice(0, at).split('\n').length;

  // Parses until one of `stops` keywords; returns the nodes and the stopping action's words.
  const parseList = (stops: string[]): { nodes: Node[]; stop: string; rest: string } => {
    const nodes: Node[] = [];
    while (i < pieces.length) {
      const piece = pieces[i++]!;
      if (piece.kind === 'text') {
        if (piece.text) nodes.push({ n: 'text', text: piece.text });
        continue;
      }
      const src = piece.source;
      const where = `${file}:${lineOf(piece.at)}`;
      if (src.startsWith('/*')) {
        if (!src.endsWith('*/')) throw new TemplateError(`${where}: bad comment`);
        continue;
      }
      const word = /^[a-z]+/.exec(src)?.[0] ?? '';
      const rest = src.slice(word.length).trim();
      if (stops.includes(word)) return { nodes, stop: word, rest };
      if (word === 'if') {
        const branches = [{ cond: parsePipeline(tokenize(rest, where), where), body: [] as Node[] }];
        let otherwise: Node[] = [];
        for (;;) {
          const part = parseList(['else', 'end']);
          branches.at(-1)!.body = part.nodes;
          if (part.stop === 'end') break;
          if (part.rest.startsWith('if ')) {
            branches.push({ cond: parsePipeline(tokenize(part.rest.slice(3), where), where), body: [] });
          } else if (part.rest === '') {
            otherwise = parseList(['end']).nodes;
            break;
          } else throw new TemplateError(`${where}: unsupported else form "${part.rest}"`);
        }
        nodes.push({ n: 'if', branches, otherwise });
      } else if (word === 'range' || word === 'with') {
        const pipe = parsePipeline(tokenize(rest, where), where);
        const body = parseList(['else', 'end']);
        const otherwise = body.stop === 'else' ? parseList(['end']).nodes : [];
        nodes.push({ n: word, pipe, body: body.nodes, otherwise });
      } else if (word === 'define') {
        const name = JSON.parse(rest) as string;
        defines.set(name, parseList(['end']).nodes);
      } else if (['else', 'end', 'template', 'block', 'break', 'continue'].includes(word)) {
        throw new TemplateError(`${where}: unexpected or unsupported "${word}"`);
      } else {
        nodes.push({ n: 'out', pipe: parsePipeline(tokenize(src, where), where) });
      }
    }
    if (stops.length > 0) throw new TemplateError(`${file}: missing {{ end }}`);
    return { nodes, stop: '', rest: '' };
  };
  const { nodes } = parseList([]);
  return { nodes, defines };
}

// ---------------------------------------------------------------------------------------------
// Evaluation.

function isEmpty(v: Value): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.keys(v).length === 0;
  return false;
}

/** How Go's fmt prints a value with %v (what `{{ x }}` writes). */
function print(v: Value): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Math.abs(v) >= 1e6) {
    // Helm reads numbers from values as float64, which Go prints as 1e+06 and so on.
    throw new TemplateError(`${v} would print in exponent form under Helm: use toJson`);
  }
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(print).join(' ')}]`;
  const entries = Object.entries(v as Record<string, Value>).sort(([a], [b]) => (a < b ? -1 : 1));
  return `map[${entries.map(([k, x]) => `${k}:${print(x)}`).join(' ')}]`;
}

function toInt(v: Value, fn: string): number {
  if (typeof v === 'number') return Math.trunc(v);
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
  if (v === null || v === undefined) return 0;
  throw new TemplateError(`${fn}: cannot convert ${JSON.stringify(v)} to int`);
}

function str(v: Value): string {
  return print(v);
}

function sprintf(format: string, args: Value[]): string {
  let n = 0;
  return format.replace(/%([sdvq%])/g, (_m, verb: string) => {
    if (verb === '%') return '%';
    const arg = args[n++];
    if (verb === 'd') return String(toInt(arg, 'printf'));
    if (verb === 'q') return JSON.stringify(str(arg));
    return str(arg);
  });
}

type Fn = (r: Renderer, ...args: Value[]) => Value;

const FUNCTIONS: Record<string, Fn> = {
  default: (_r, d, v) => (isEmpty(v) ? d : v),
  quote: (_r, ...vs) => vs.map((v) => JSON.stringify(str(v))).join(' '),
  toYaml: (_r, v) => YAML.stringify(v ?? null).replace(/\n$/, ''),
  toJson: (_r, v) => JSON.stringify(v ?? null),
  toPrettyJson: (_r, v) => JSON.stringify(v ?? null, null, 2),
  indent: (_r, n, s) => {
    const pad = ' '.repeat(toInt(n, 'indent'));
    return pad + str(s).replace(/\n/g, `\n${pad}`);
  },
  nindent: (_r, n, s) => {
    const pad = ' '.repeat(toInt(n, 'nindent'));
    return `\n${pad}${str(s).replace(/\n/g, `\n${pad}`)}`;
  },
  trunc: (_r, n, s) => str(s).slice(0, toInt(n, 'trunc')),
  trimSuffix: (_r, suffix, s) => {
    const text = str(s);
    const end = str(suffix);
    return end && text.endsWith(end) ? text.slice(0, -end.length) : text;
  },
  lower: (_r, s) => str(s).toLowerCase(),
  printf: (_r, format, ...args) => sprintf(str(format), args),
  eq: (_r, a, ...bs) => bs.some((b) => a === b),
  ne: (_r, a, b) => a !== b,
  not: (_r, v) => isEmpty(v),
  and: (_r, ...vs) => vs.find((v) => isEmpty(v)) ?? vs.at(-1),
  or: (_r, ...vs) => vs.find((v) => !isEmpty(v)) ?? vs.at(-1),
  add: (_r, ...vs) => vs.reduce<number>((sum, v) => sum + toInt(v, 'add'), 0),
  int: (_r, v) => toInt(v, 'int'),
  until: (_r, n) => Array.from({ length: Math.max(0, toInt(n, 'until')) }, (_x, i) => i),
  sha256sum: (_r, s) => createHash('sha256').update(str(s)).digest('hex'),
  include: (r, name, data) => r.include(str(name), data),
  // As Helm's: the render stops with the message.
  fail: (_r, message) => {
    throw new Error(str(message));
  },
};

class Scope {
  private readonly vars = new Map<string, Value>();
  constructor(private readonly parent?: Scope) {}
  get(name: string): Value {
    if (this.vars.has(name)) return this.vars.get(name);
    if (this.parent) return this.parent.get(name);
    throw new TemplateError(`undefined variable ${name}`);
  }
  declare(name: string, v: Value): void {
    this.vars.set(name, v);
  }
  assign(name: string, v: Value): void {
    if (this.vars.has(name)) this.vars.set(name, v);
    else if (this.parent) this.parent.assign(name, v);
    else throw new TemplateError(`assignment to undeclared ${name}`);
  }
}

function walk(base: Value, path: string[], label: string): Value {
  let v = base;
  for (const key of path) {
    if (v === null || v === undefined) {
      throw new TemplateError(`nil pointer evaluating ${label}.${path.join('.')} at "${key}"`);
    }
    if (typeof v !== 'object' || Array.isArray(v)) {
      throw new TemplateError(`cannot read field "${key}" of a ${typeof v} in ${label}.${path.join('.')}`);
    }
    v = (v as Record<string, Value>)[key];
  }
  return v;
}

class Renderer {
  constructor(private readonly defines: Map<string, Node[]>) {}

  include(name: string, data: Value): string {
    const body = this.defines.get(name);
    if (!body) throw new TemplateError(`include: no template named "${name}"`);
    const scope = new Scope();
    scope.declare('$', data);
    return this.run(body, data, scope);
  }

  run(nodes: Node[], dot: Value, scope: Scope): string {
    let out = '';
    for (const node of nodes) {
      if (node.n === 'text') out += node.text;
      else if (node.n === 'out') {
        const v = this.pipeline(node.pipe, dot, scope);
        if (!node.pipe.decl) out += print(v);
      } else if (node.n === 'if') {
        const inner = new Scope(scope);
        const hit = node.branches.find((b) => !isEmpty(this.pipeline(b.cond, dot, inner)));
        out += this.run(hit ? hit.body : node.otherwise, dot, inner);
      } else if (node.n === 'with') {
        const inner = new Scope(scope);
        const v = this.pipeline(node.pipe, dot, inner);
        out += isEmpty(v) ? this.run(node.otherwise, dot, inner) : this.run(node.body, v, inner);
      } else {
        const inner = new Scope(scope);
        const decl = node.pipe.decl;
        const v = this.pipeline({ cmds: node.pipe.cmds }, dot, inner);
        const items: [Value, Value][] = Array.isArray(v)
          ? v.map((x, i) => [i, x])
          : v && typeof v === 'object'
            ? Object.keys(v)
                .sort()
                .map((k) => [k, (v as Record<string, Value>)[k]])
            : isEmpty(v)
              ? []
              : (() => {
                  throw new TemplateError(`range over ${typeof v}`);
                })();
        if (items.length === 0) out += this.run(node.otherwise, dot, inner);
        for (const [key, item] of items) {
          const iter = new Scope(inner);
          if (decl?.names.length === 1) iter.declare(decl.names[0]!, item);
          if (decl?.names.length === 2) {
            iter.declare(decl.names[0]!, key);
            iter.declare(decl.names[1]!, item);
          }
          out += this.run(node.body, item, iter);
        }
      }
    }
    return out;
  }

  pipeline(pipe: Pipeline, dot: Value, scope: Scope): Value {
    let piped: Value = undefined;
    let first = true;
    for (const cmd of pipe.cmds) {
      piped = this.command(cmd, dot, scope, first ? [] : [piped]);
      first = false;
    }
    if (pipe.decl) {
      const name = pipe.decl.names[0]!;
      if (pipe.decl.assign) scope.assign(name, piped);
      else scope.declare(name, piped);
    }
    return piped;
  }

  private command(cmd: Command, dot: Value, scope: Scope, piped: Value[]): Value {
    const head = cmd[0]!;
    if (head.k === 'fn') {
      const fn = FUNCTIONS[head.name];
      if (!fn) throw new TemplateError(`unsupported function "${head.name}"`);
      const args = cmd.slice(1).map((op) => this.operand(op, dot, scope));
      return fn(this, ...args, ...piped);
    }
    if (cmd.length > 1 || piped.length > 0) throw new TemplateError('a non-function cannot take arguments');
    return this.operand(head, dot, scope);
  }

  private operand(op: Operand, dot: Value, scope: Scope): Value {
    switch (op.k) {
      case 'lit':
        return op.v;
      case 'field':
        return walk(dot, op.path, '');
      case 'var':
        return walk(scope.get(op.name), op.path, op.name);
      case 'sub':
        return this.pipeline(op.pipe, dot, scope);
      case 'fn': {
        const fn = FUNCTIONS[op.name];
        if (!fn) throw new TemplateError(`unsupported function "${op.name}"`);
        return fn(this);
      }
    }
  }
}

/** Parses templates; `render` evaluates one of them with the given data (Helm's top-level object). */
export class TemplateSet {
  private readonly parsed = new Map<string, Parsed>();
  private readonly defines = new Map<string, Node[]>();

  add(file: string, source: string): void {
    const parsed = parse(source, file);
    this.parsed.set(file, parsed);
    for (const [name, body] of parsed.defines) this.defines.set(name, body);
  }

  render(file: string, data: Value): string {
    const parsed = this.parsed.get(file);
    if (!parsed) throw new TemplateError(`no template file ${file}`);
    const renderer = new Renderer(this.defines);
    const scope = new Scope();
    scope.declare('$', data);
    return renderer.run(parsed.nodes, data, scope);
  }
}
