// Directives of the subgroup variant of kernels/matmul.wgsl: composed first (directives
// must open the module). Used only when the device has 'subgroups' and the implementation
// the 'subgroup_id' language extension (src/gpu/matmul.ts checks both).
enable subgroups;
requires subgroup_id;
