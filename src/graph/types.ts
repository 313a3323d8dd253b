/**
 * The compiled build graph: pure data, printable, diffable, golden-tested. Everything that decides
 * *what* to build lives here; the scheduler and engine only execute it.
 */

export type BaseRef =
  | { kind: 'scratch' }
  /** Another vertex of this graph (FROM <stage>, or an image of this spec, via its target vertex). */
  | { kind: 'vertex'; vertex: string; image?: string }
  /** An external image, by normalised reference. */
  | { kind: 'image'; ref: string };

export interface GraphStep {
  /** 1-based line in the Dockerfile. */
  line: number;
  /** Instruction keyword, upper-case. */
  instruction: string;
  /** The instruction text as written (for display only; not part of identities). */
  text: string;
}

export interface StageVertex {
  /** Content identity: sha256 over the inputs that decide the stage's result (not names or positions). */
  id: string;
  /** Dockerfile path relative to the spec's directory. */
  dockerfile: string;
  /** Context path relative to the spec's directory. */
  context: string;
  stage: { index: number; name?: string };
  platform: string;
  /** Build args the stage can see (declared by an ARG in scope), after spec/matrix expansion. */
  args: Record<string, string>;
  base: BaseRef;
  /** Vertices this one needs first (base stage, COPY --from, RUN --mount from=, image dependencies). */
  dependsOn: string[];
  /** External images read by COPY --from=<image> or RUN --mount from=<image>. */
  externalImages: string[];
  /** Images whose build includes this vertex (sorted). */
  usedBy: string[];
  steps: GraphStep[];
}

export interface GraphImage {
  name: string;
  /** Images of this spec that must be built first (sorted). */
  dependsOn: string[];
  destinations: string[];
  /** Vertex ids of the stages this image builds, in build order; the last is the target. */
  stages: string[];
  target: string;
  platform: string;
  push: boolean;
}

export interface BuildGraph {
  version: 1;
  images: GraphImage[];
  vertices: StageVertex[];
}
