export * from './i8042.js';
export { Ps2Keyboard, type Ps2KeyboardState } from './ps2-keyboard.js';
export { Ps2Mouse, type Ps2MouseState } from './ps2-mouse.js';
export { scancodeBytes, translateToSet1, type KeyCode } from './scancodes.js';
