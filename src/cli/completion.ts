import { Argument, type Command, type Option } from 'commander';

/** One command level: the words that complete after it, and its options that take a value. */
interface Level {
  readonly path: string;
  readonly words: readonly string[];
  readonly valued: readonly string[];
}

/**
 * `regmirror completion bash|zsh`: a script generated from the command tree itself, so every
 * command and option added later completes without anyone remembering to list it here.
 */
export function registerCompletionCommand(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script: source <(regmirror completion bash)')
    .addArgument(new Argument('<shell>').choices(SHELLS))
    .action((shell: Shell) => {
      process.stdout.write(completionScript(program, shell));
    });
}

const SHELLS = ['bash', 'zsh'] as const;
type Shell = (typeof SHELLS)[number];

export function completionScript(program: Command, shell: Shell): string {
  const bash = bashScript(levels(program));
  if (shell === 'bash') return bash;
  // zsh runs bash completion functions through bashcompinit; the words and options are the same.
  return `(( $+functions[compdef] )) || { autoload -U +X compinit && compinit }\nautoload -U +X bashcompinit && bashcompinit\n${bash}`;
}

function levels(program: Command): Level[] {
  const out: Level[] = [];
  const visit = (cmd: Command, path: string) => {
    const options = [...cmd.options, helpOption(cmd)].filter((o): o is Option => o !== undefined);
    const subcommands = cmd.commands.filter((c) => !(c as Command & { _hidden?: boolean })._hidden).map((c) => c.name());
    out.push({
      path,
      words: [...subcommands, ...cmd.registeredArguments.flatMap((a) => a.argChoices ?? []), ...options.map((o) => o.long).filter((l): l is string => l !== undefined)],
      valued: options.filter((o) => o.required || o.optional).flatMap((o) => [o.long, o.short].filter((f): f is string => f !== undefined)),
    });
    for (const sub of cmd.commands) visit(sub, `${path}/${sub.name()}`);
  };
  visit(program, '');
  return out;
}

function helpOption(cmd: Command): Option | undefined {
  // commander adds --help to every command outside `options`.
  return (cmd as Command & { _getHelpOption?: () => Option | null })._getHelpOption?.() ?? undefined;
}

function bashScript(all: readonly Level[]): string {
  const paths = all.filter((l) => l.path !== '').map((l) => l.path);
  const valued = [...new Set(all.flatMap((l) => l.valued))];
  const cases = all.map((l) => `    "${l.path}") words="${l.words.join(' ')}" ;;`).join('\n');
  return `# regmirror completion for bash: source <(regmirror completion bash)
_regmirror() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" path="" words="" i
  # After an option that takes a value (a file, a directory, an address) the shell's own completion applies.
  case "$prev" in
    ${valued.join('|')}) COMPREPLY=(); return ;;
  esac
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "$path/\${COMP_WORDS[i]}" in
      ${paths.join('|')}) path="$path/\${COMP_WORDS[i]}" ;;
    esac
  done
  case "$path" in
${cases}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _regmirror regmirror
`;
}
