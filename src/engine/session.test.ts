// The session's CPU fallback (written once, in Session.withFallback), on a stand-in GPU whose
// device is lost on demand: a step runs on the GPU while the device lives and has the
// step's codec, on the CPU otherwise; a loss mid-step reruns that step on the CPU and the
// status says why; any other error is the caller's. (A real device lost mid-job:
// device-lost.test.ts, engine.test.ts.)
import { describe, expect, it } from 'vitest';
import { GpuDeviceLostError, type GpuContext, type GpuLostInfo } from '../gpu/device.ts';
import { readShaderFiles } from '../gpu/node-gpu.ts';
import { hasShaderSources, registerShaderSources } from '../gpu/shaders.ts';
import { quantType } from '../quant/types.ts';
import { Session } from './session.ts';

// Which types have a GPU codec is read from the WGSL sources, as when Dawn opens.
if (!hasShaderSources()) registerShaderSources(readShaderFiles());

/** Enough of a GpuContext for the session: a description and a device that can be lost. */
function standInGpu(): GpuContext & { lose(message: string): GpuLostInfo } {
  let lost: GpuLostInfo | null = null;
  const listeners: ((info: GpuLostInfo) => void)[] = [];
  const gpu = {
    description: 'stand-in GPU',
    isLost: () => lost !== null,
    onLost: (listener: (info: GpuLostInfo) => void) => {
      listeners.push(listener);
      return () => undefined;
    },
    lose(message: string) {
      lost = { reason: 'unknown', message };
      for (const l of listeners) l(lost);
      return lost;
    },
  };
  return gpu as unknown as GpuContext & { lose(message: string): GpuLostInfo };
}

const q8_0 = quantType('q8_0')!;

describe('Session.withFallback', () => {
  it('runs the GPU step while the device lives, the CPU step without a GPU', async () => {
    const gpu = standInGpu();
    const onGpu = new Session(async () => gpu);
    expect(await onGpu.withFallback(async (g) => g.description, async () => 'cpu')).toEqual({ value: 'stand-in GPU', backend: 'webgpu' });
    expect(await new Session(null).withFallback(async () => 'gpu', async () => 'cpu')).toEqual({ value: 'cpu', backend: 'cpu' });
    expect(await new Session(null).status()).toMatchObject({ backend: 'cpu', detail: 'CPU backend requested' });
  });

  it('opens the GPU once; a GPU that fails to open leaves the CPU, with the reason in the status', async () => {
    let opened = 0;
    const session = new Session(async () => {
      opened++;
      throw new Error('no adapter');
    });
    expect(await session.withFallback(async () => 'gpu', async () => 'cpu')).toEqual({ value: 'cpu', backend: 'cpu' });
    expect(await session.status()).toMatchObject({ backend: 'cpu', detail: 'no adapter' });
    expect(opened).toBe(1);
  });

  it('a device lost mid-step reruns that step on the CPU, says why, and keeps later steps on the CPU', async () => {
    const gpu = standInGpu();
    const session = new Session(async () => gpu);
    const told: string[] = [];
    session.watchGpu((s) => told.push(`${s.backend}: ${s.detail}`));
    let gpuSteps = 0;
    const step = () =>
      session.withFallback(
        async () => {
          gpuSteps++;
          throw new GpuDeviceLostError(gpu.lose('driver reset'));
        },
        async () => 'on the CPU',
      );
    expect(await step()).toEqual({ value: 'on the CPU', backend: 'cpu' });
    expect(await session.status()).toMatchObject({ backend: 'cpu', detail: 'GPU device lost (unknown): driver reset' });
    expect(told).toEqual(['cpu: GPU device lost (unknown): driver reset']);
    expect(await step()).toEqual({ value: 'on the CPU', backend: 'cpu' });
    expect(gpuSteps).toBe(1);
  });

  it("passes any other error on, and runs a type without the GPU's codec on the CPU", async () => {
    const session = new Session(async () => standInGpu());
    await expect(session.withFallback(async () => Promise.reject(new Error('bad shader')), async () => 'cpu')).rejects.toThrow('bad shader');
    const noGpuCodec = { ...q8_0, id: 'no-gpu-codec', wgsl: 'no-such-codec' } as typeof q8_0;
    expect(await session.withFallback(async () => 'gpu', async () => 'cpu', noGpuCodec)).toEqual({ value: 'cpu', backend: 'cpu' });
    expect(await session.withFallback(async (_g, c) => c.backend, async () => 'cpu', q8_0)).toEqual({ value: 'webgpu', backend: 'webgpu' });
  });

  it('run(): one step written against Compute, on the CPU codecs after a loss, with the same bytes', async () => {
    const gpu = standInGpu();
    const session = new Session(async () => gpu);
    const data = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i));
    gpu.lose('gone before the step');
    const r = await session.run(q8_0, (c) => c.quantize(q8_0, data, 64));
    expect(r.backend).toBe('cpu');
    expect(Buffer.from(r.value).equals(Buffer.from(q8_0.codec.encode(data, 64)))).toBe(true);
  });
});
