/*
 * empty_layer: placeholder object for a source layer with no modules yet,
 * so the build can link every layer in order (see src/CMakeLists.txt).
 */
extern int celer_empty_layer_placeholder;
int celer_empty_layer_placeholder;
