/**
 * From a parsed RUN (shell or exec form, heredocs) and the stage's SHELL to the argv the sandbox
 * runs, per DOCKERFILE.md A3 (BuildKit dispatchRun). Pure.
 *
 * The three heredoc cases:
 *  1. one heredoc that is the whole command and whose body starts with `#!`: the body becomes a
 *     read-only file `/dev/pipes/<NAME>` (mode 0755) and runs as `[SHELL…, "/dev/pipes/NAME"]`;
 *  2. one heredoc that is the whole command, no `#!`: the (chomped) body is the shell command;
 *  3. anything else: the command line + `\n` + each body + its name goes to the shell, which
 *     handles the heredocs itself.
 */
import type { CommandLine, HeredocSpec } from '../../dockerfile/types.js';
import type { SandboxMount } from './types.js';

export const DEFAULT_SHELL = ['/bin/sh', '-c'];
export const PIPES_DIR = '/dev/pipes';

export interface RunCommandInput {
  command: CommandLine;
  heredocs?: HeredocSpec[];
}

export interface RunCommandPlan {
  argv: string[];
  /** Extra mounts the command needs (the script file of case 1). */
  mounts: SandboxMount[];
}

const HEREDOC_WORD = /^(\d*)<<(-?)([^<]*)$/;

/** Whether `command` is exactly one heredoc word naming `name` (`<<EOF`, `<<-"EOF"`, `3<<EOF`). */
export function isWholeCommandHeredoc(command: string, name: string): boolean {
  const m = HEREDOC_WORD.exec(command.trim());
  if (!m) return false;
  const rest = (m[3] ?? '').trim();
  if (rest === '') return false;
  // One shell word once quotes are removed (BuildKit checks ProcessWords(rest) has length 1).
  const unquoted = rest.replace(/["']/g, '');
  if (/\s/.test(unquoted)) return false;
  return unquoted === name;
}

export function runCommandArgv(instr: RunCommandInput, shell: string[] = DEFAULT_SHELL): RunCommandPlan {
  const sh = shell.length > 0 ? shell : DEFAULT_SHELL;
  const cmd = instr.command;
  if (cmd.form === 'exec') return { argv: [...cmd.argv], mounts: [] };
  const heredocs = instr.heredocs ?? [];
  if (heredocs.length === 0) return { argv: [...sh, cmd.command], mounts: [] };

  const only = heredocs.length === 1 ? heredocs[0] : undefined;
  if (only && isWholeCommandHeredoc(cmd.command, only.name)) {
    // The parser has already stripped tabs for `<<-` (HeredocSpec.body).
    const data = only.body;
    if (data.startsWith('#!')) {
      const file = `${PIPES_DIR}/${sanitizeName(only.name)}`;
      return {
        argv: [...sh, file],
        mounts: [{ kind: 'file', content: data, target: file, mode: 0o755, uid: 0, gid: 0 }],
      };
    }
    return { argv: [...sh, data], mounts: [] };
  }
  let full = cmd.command;
  for (const h of heredocs) full += `\n${h.body}${h.name}`;
  return { argv: [...sh, full], mounts: [] };
}

/** A heredoc name as a file name: no path separators, never empty or a dot name. */
function sanitizeName(name: string): string {
  const s = name.replace(/[/\0]/g, '_');
  return s === '' || s === '.' || s === '..' ? 'heredoc' : s;
}
