// The WebGPU device: adapter, limits, optional features, loss. The only file besides
// node-gpu.ts that looks for a GPU (house rule 4: only gpu/ touches navigator.gpu).
//
// Limits: the kernels ask for the adapter's best storage binding / buffer sizes and
// workgroup counts (defaults are 128 MiB / 256 MiB / 65535). `forceLimits` lowers the
// limits the kernels *plan with* below the device's, so tests can exercise chunking and
// 2D dispatch on small data: WebGPU itself never grants less than its defaults.

/** Limits the kernels plan their chunks and dispatches with. */
export interface GpuLimits {
  /** Largest storage buffer binding, bytes. */
  readonly maxStorageBufferBindingSize: number;
  /** Largest buffer, bytes. */
  readonly maxBufferSize: number;
  /** Workgroups per dispatch dimension. */
  readonly maxComputeWorkgroupsPerDimension: number;
  readonly maxComputeInvocationsPerWorkgroup: number;
  readonly maxComputeWorkgroupSizeX: number;
  /** Bytes of var<workgroup> memory. */
  readonly maxComputeWorkgroupStorageSize: number;
  readonly maxStorageBuffersPerShaderStage: number;
}

export type GpuLimitName = keyof GpuLimits;

const LIMIT_NAMES: readonly GpuLimitName[] = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupsPerDimension',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupStorageSize',
  'maxStorageBuffersPerShaderStage',
];

/** Features used when the adapter has them, never required. */
const OPTIONAL_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'] as const;
export type OptionalFeature = (typeof OPTIONAL_FEATURES)[number];

export interface GpuLostInfo {
  /** 'destroyed' when we destroyed it, 'unknown' for a driver reset, crash, unplug. */
  readonly reason: GPUDeviceLostReason | 'unknown';
  readonly message: string;
}

export interface GpuContext {
  readonly adapter: GPUAdapter;
  readonly device: GPUDevice;
  /** Effective limits: the device's, lowered by `forceLimits`. */
  readonly limits: GpuLimits;
  /** Optional features the device has enabled. */
  readonly features: ReadonlySet<OptionalFeature>;
  /** WGSL language extensions of this implementation (GPU.wgslLanguageFeatures: 'subgroup_id'...). */
  readonly wgslLanguageFeatures?: ReadonlySet<string>;
  /** Adapter description for logs and the UI ("google swiftshader (fallback)"). */
  readonly description: string;
  readonly isFallbackAdapter: boolean;
  /** Resolves once, when the device is lost: callers finish the job on the CPU. */
  readonly lost: Promise<GpuLostInfo>;
  /** Whether `lost` has resolved. */
  isLost(): boolean;
  /** Calls `listener` when the device is lost (at once if it already is); returns an unsubscribe. */
  onLost(listener: (info: GpuLostInfo) => void): () => void;
  /** Validation / out-of-memory errors no error scope caught (for logs and tests). */
  readonly uncapturedErrors: readonly string[];
  destroy(): void;
}

/** No WebGPU here: no navigator.gpu, or no adapter. The app falls back to the CPU codecs. */
export class WebGpuUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebGpuUnavailableError';
  }
}

/** The device was lost (driver reset, destroy) before or during an operation. */
export class GpuDeviceLostError extends Error {
  constructor(readonly info: GpuLostInfo) {
    super(`GPU device lost (${info.reason}): ${info.message}`);
    this.name = 'GpuDeviceLostError';
  }
}

export interface CreateGpuOptions {
  /** The GPU entry point; default navigator.gpu. Node passes the `webgpu` package's (node-gpu.ts). */
  gpu?: GPU;
  powerPreference?: GPUPowerPreference;
  /** Accept a software adapter (SwiftShader); default true. */
  allowFallbackAdapter?: boolean;
  /** Plan with at most these limits (tests of chunking and 2D dispatch). */
  forceLimits?: Partial<GpuLimits>;
  /** Prefix of every GPU object's label; default 'quantlab'. */
  label?: string;
}

function navigatorGpu(): GPU | undefined {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  return nav?.gpu;
}

/** Open the GPU: adapter, device with the limits and optional features the kernels use. */
export async function createGpu(options: CreateGpuOptions = {}): Promise<GpuContext> {
  const gpu = options.gpu ?? navigatorGpu();
  if (!gpu) {
    throw new WebGpuUnavailableError(
      'WebGPU is not available here (no navigator.gpu): use a browser with WebGPU enabled ' +
        '(Chrome/Edge 113+, Safari 26+, Firefox 141+; Chromium flag --enable-unsafe-webgpu on Linux), ' +
        'or the CPU backend.',
    );
  }
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) {
    throw new WebGpuUnavailableError(
      'WebGPU is present but no GPU adapter was found (blocklisted driver, or no Vulkan/Metal/D3D12 driver; ' +
        'in Node set VK_ICD_FILENAMES to a Vulkan driver such as /usr/lib/chromium/vk_swiftshader_icd.json).',
    );
  }
  const fallback = adapter.info?.isFallbackAdapter ?? false;
  if (fallback && options.allowFallbackAdapter === false) {
    throw new WebGpuUnavailableError('only a software (fallback) WebGPU adapter is available');
  }

  const requiredLimits: Record<string, number> = {};
  for (const name of LIMIT_NAMES) requiredLimits[name] = adapter.limits[name];
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  const label = options.label ?? 'quantlab';
  const device = await adapter.requestDevice({
    label: `${label}.device`,
    requiredLimits,
    requiredFeatures,
    defaultQueue: { label: `${label}.queue` },
  });

  const limits = {} as { -readonly [K in GpuLimitName]: number };
  for (const name of LIMIT_NAMES) {
    const forced = options.forceLimits?.[name];
    limits[name] = forced === undefined ? device.limits[name] : Math.min(forced, device.limits[name]);
  }

  let lostInfo: GpuLostInfo | undefined;
  const listeners = new Set<(info: GpuLostInfo) => void>();
  const lost = device.lost.then((info) => {
    lostInfo = { reason: info.reason ?? 'unknown', message: info.message };
    for (const l of listeners) l(lostInfo);
    listeners.clear();
    return lostInfo;
  });
  const uncapturedErrors: string[] = [];
  device.addEventListener('uncapturederror', (ev) => {
    const msg = (ev as GPUUncapturedErrorEvent).error.message;
    uncapturedErrors.push(msg);
    console.error(`[${label}] uncaptured WebGPU error: ${msg}`);
  });

  const info = adapter.info;
  const description =
    [info?.vendor, info?.architecture, info?.device, info?.description].filter((s) => s).join(' ') +
    (fallback ? ' (fallback)' : '');

  return {
    adapter,
    device,
    limits,
    features: new Set(requiredFeatures),
    wgslLanguageFeatures: new Set(gpu.wgslLanguageFeatures ?? []),
    description: description || 'unknown adapter',
    isFallbackAdapter: fallback,
    lost,
    isLost: () => lostInfo !== undefined,
    onLost(listener) {
      if (lostInfo) {
        listener(lostInfo);
        return () => {};
      }
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    uncapturedErrors,
    destroy: () => device.destroy(),
  };
}

/**
 * The same device, planning with lower limits (tests of chunking and 2D dispatch): shares
 * the device, its compiled pipelines and its loss, unlike a second createGpu().
 */
export function restrictLimits(gpu: GpuContext, forceLimits: Partial<GpuLimits>): GpuContext {
  const limits: { -readonly [K in GpuLimitName]: number } = { ...gpu.limits };
  for (const [name, value] of Object.entries(forceLimits) as [GpuLimitName, number][]) {
    limits[name] = Math.min(value, gpu.limits[name]);
  }
  return { ...gpu, limits };
}

/** Throw GpuDeviceLostError if the device is gone. */
export function assertNotLost(gpu: GpuContext): void {
  if (gpu.isLost()) {
    let info: GpuLostInfo = { reason: 'unknown', message: 'device lost' };
    gpu.onLost((i) => (info = i));
    throw new GpuDeviceLostError(info);
  }
}
