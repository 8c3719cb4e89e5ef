import t from 'tap';
import { TemplateError, TemplateSet } from './goTemplate.js';

// The chart tests are only as good as the renderer they use: these pin its behaviour to Go
// text/template + Sprig semantics for the subset the chart relies on.

function run(source: string, data: unknown = {}, partials = ''): string {
  const set = new TemplateSet();
  if (partials) set.add('_helpers.tpl', partials);
  set.add('t.yaml', source);
  return set.render('t.yaml', data);
}

void t.test('trim markers remove the whitespace on their side only', (t) => {
  t.equal(run('a  {{- "b" }}  c'), 'ab  c');
  t.equal(run('a  {{ "b" -}}  \n c'), 'a  bc');
  t.equal(run('x:\n  {{- "y" }}'), 'x:y');
  t.end();
});

void t.test('comments render nothing', (t) => {
  t.equal(run('a{{/* note */}}b'), 'ab');
  t.equal(run('a\n{{- /* note\nmore */ -}}\nb'), 'ab');
  t.end();
});

void t.test('if, else if and else pick the first truthy branch with Go truthiness', (t) => {
  const tpl = '{{ if .a }}A{{ else if .b }}B{{ else }}C{{ end }}';
  t.equal(run(tpl, { a: 1, b: 1 }), 'A');
  t.equal(run(tpl, { a: 0, b: 'x' }), 'B');
  t.equal(run(tpl, { a: '', b: [] }), 'C');
  t.equal(run(tpl, { a: {}, b: null }), 'C');
  t.end();
});

void t.test('range walks lists with index and element, and maps in key order', (t) => {
  t.equal(run('{{ range $i, $v := .l }}{{ $i }}={{ $v }};{{ end }}', { l: ['a', 'b'] }), '0=a;1=b;');
  t.equal(run('{{ range .m }}{{ . }}{{ end }}', { m: { b: 2, a: 1 } }), '12');
  t.equal(run('{{ range $i := until 3 }}{{ $i }}{{ end }}'), '012');
  t.equal(run('{{ range .l }}x{{ else }}empty{{ end }}', { l: [] }), 'empty');
  t.end();
});

void t.test('with rebinds dot and is skipped for empty values', (t) => {
  t.equal(run('{{ with .a }}[{{ . }}]{{ end }}', { a: 'v' }), '[v]');
  t.equal(run('{{ with .a }}[{{ . }}]{{ end }}', { a: '' }), '');
  t.end();
});

void t.test('variables are scoped and $ is the root', (t) => {
  t.equal(run('{{ $x := .a }}{{ with .b }}{{ $x }}{{ $.a }}{{ . }}{{ end }}', { a: 1, b: 2 }), '112');
  t.end();
});

void t.test('pipelines pass the value as the last argument', (t) => {
  t.equal(run('{{ .a | default "d" | quote }}', { a: '' }), '"d"');
  t.equal(run('{{ "x-" | trimSuffix "-" }}'), 'x');
  t.equal(run('{{ printf "%s-%s" .a .b | trunc 3 }}', { a: 'ab', b: 'cd' }), 'ab-');
  t.equal(run('{{ add 1 2 (int "3") }}'), '6');
  t.equal(run('{{ and 1 "" }}|{{ or "" "y" }}|{{ not 0 }}|{{ eq "a" "b" "a" }}'), '|y|true|true');
  t.end();
});

void t.test('toYaml, toJson and nindent format nested values', (t) => {
  t.equal(run('k:{{ toYaml .v | nindent 2 }}', { v: { a: 1, b: ['x'] } }), 'k:\n  a: 1\n  b:\n    - x');
  t.equal(run('{{ toJson .v }}', { v: ['a', 1] }), '["a",1]');
  t.end();
});

void t.test('include renders a defined template with the given data', (t) => {
  const partials = '{{- define "n" -}}name-{{ .x }}{{- end -}}';
  t.equal(run('{{ include "n" . | quote }}', { x: 'y' }, partials), '"name-y"');
  t.end();
});

void t.test('unsupported constructs and broken templates are errors, not silent output', (t) => {
  t.throws(() => run('{{ tpl "x" . }}'), TemplateError);
  t.throws(() => run('{{ if .a }}x'), TemplateError);
  t.throws(() => run('{{ template "n" . }}'), TemplateError);
  t.throws(() => run('{{ .a.b }}', { a: null }), /nil pointer/);
  t.throws(() => run('{{ $nope }}'), /undefined variable/);
  t.throws(() => run('{{ include "missing" . }}'), /no template named/);
  t.throws(() => run('{{ .big }}', { big: 1000000 }), /exponent form/);
  t.end();
});
