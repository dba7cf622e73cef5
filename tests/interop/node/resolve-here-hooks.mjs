// Module resolution hooks for resolve-here.mjs: retry a bare specifier that was not found from this folder.
const HERE = new URL('./package.json', import.meta.url).href;

function isBare(specifier) {
  return !specifier.startsWith('.') && !specifier.startsWith('/') && !specifier.includes(':');
}

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !isBare(specifier)) throw error;
    return nextResolve(specifier, { ...context, parentURL: HERE });
  }
}
