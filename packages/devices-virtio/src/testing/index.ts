export { TestPciContext, type TestCompletion, type TestRequest, VirtioTestDriver, type VirtioTestDriverOptions } from './virtio-test-driver.js';
