// Directives of kernels/gptq_block_sg.wgsl (composed first: directives open the module).
// Its subgroup operations run inside the per-row loop, whose bounds differ by subgroup but
// not within one (every lane of a subgroup walks the same row): uniform where it matters,
// which WGSL's analysis cannot see.
enable subgroups;
requires subgroup_id;
diagnostic(off, subgroup_uniformity);
