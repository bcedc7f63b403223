export { guestMemoryContract, type GuestMemoryContractOptions } from './contract.js';
export { guestRamModelCommands, runGuestRamModel, type RamModelCommand } from './model.js';
