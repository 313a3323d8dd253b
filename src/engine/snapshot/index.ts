export { createSnapshotter, detectSnapshotter, probeOverlay, type SnapshotterChoice, type DetectOptions } from './detect.js';
export { OverlaySnapshotter } from './overlay.js';
export { WalkSnapshotter } from './walk.js';
export { DEFAULT_IGNORE, type LowerDir, type PrepareOptions, type Rootfs, type SnapshotOptions, type Snapshotter, type SnapshotterKind, type SnapshotterOptions } from './types.js';
export { describeLower, readLowerMeta } from './walk.js';
