/** Where the commands that are not built yet will come from (for NotImplementedError). */
export const Issue = {
  boxes: 'issue #3 "[B] Boxes"',
  lifecycle: 'issue #4 "[C] Machine lifecycle"',
  doctor: 'issue #5',
  syncAndProvision: 'issue #6 "[E] Synced folders and provisioning in depth"',
} as const;
