/**
 * A path resolved inside a root as if chrooted: `..` stops at the root, a symlink's absolute target
 * restarts at it. The caller looks at each component (`next`) and either descends into it (`enter`)
 * or replaces it with a symlink's target (`follow`); nothing here touches the file system, so the
 * unpacker and the build root's ignore list resolve layer and user paths by the same rules.
 */
export class ScopedPath {
  private stack: string[] = [];
  private readonly queue: string[];
  private hops = 0;

  constructor(components: readonly string[]) {
    this.queue = [...components];
  }

  /** The next component to look at ('.' and '..' are applied here), or undefined at the end. */
  next(): string | undefined {
    for (;;) {
      const c = this.queue.shift();
      if (c === undefined) return undefined;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        this.stack.pop();
        continue;
      }
      return c;
    }
  }

  /** The root-relative path of `c` below what has been entered. */
  at(c: string): string {
    return this.stack.length === 0 ? c : `${this.stack.join('/')}/${c}`;
  }

  enter(c: string): void {
    this.stack.push(c);
  }

  /** Replaces the component just looked at by a symlink's target; false after `maxHops` links. */
  follow(target: string, maxHops: number): boolean {
    if (++this.hops > maxHops) return false;
    if (target.startsWith('/')) this.stack = [];
    this.queue.unshift(...target.split('/'));
    return true;
  }

  /** The root-relative path entered so far ('' for the root). */
  get entered(): string {
    return this.stack.join('/');
  }

  /** The components not looked at yet, as named. */
  get rest(): string[] {
    return this.queue.filter((q) => q !== '' && q !== '.');
  }
}
