/** Chromium's SwiftShader Vulkan driver: the GPU of GPU-less machines, for Dawn in Node too (docs/webgpu.md). */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
