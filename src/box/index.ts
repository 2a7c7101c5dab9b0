/**
 * Boxes: the .box format, the box store, catalogs, downloads and locks.
 * (Uploading into pools lives in upload.ts; building in src/build/.)
 */
export * from './metadata.js';
export * from './format.js';
export * from './version.js';
export * from './download.js';
export * from './catalog.js';
export * from './lock.js';
export * from './store.js';
