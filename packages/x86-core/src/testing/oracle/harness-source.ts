/**
 * The native harness, embedded as a string so a built (bundled) package
 * carries it too. It is written to the cache directory and compiled by
 * `HostOracle.create`; its hash keys the cache, so editing it here rebuilds.
 * The format comments below are the contract with `protocol.ts`.
 */
export const HARNESS_SOURCE = String.raw`
/*
 * tsvirt x86 host-CPU oracle harness (Linux x86-64, built with -no-pie).
 *
 * Reads test cases from stdin until EOF, runs each natively, writes one result
 * per case to stdout. 64-bit cases run in long mode; 32-bit cases run in
 * compatibility mode by a far return to the kernel's 32-bit user code segment
 * (selector 0x23), so no 32-bit libc is needed. Everything the 32-bit side
 * touches (trampoline, context block, scratch stack, code and memory pages)
 * lies below 4 GiB, which is why the harness is linked without PIE.
 *
 * Case:   u8 bits (0x80 added: an SSE case), u8 code length, u16 memory length,
 *         u32 rflags, u64 registers[16] (rax rcx rdx rbx rsp rbp rsi rdi r8..r15),
 *         code bytes, memory bytes, and for an SSE case the SSE block:
 *         xmm0..xmm15 (16 bytes each), u32 mxcsr, u32 reserved. (little endian)
 * Result: u8 status, u8 signal, u8 vector, u8 reserved, u32 si_code,
 *         u64 error code, u64 fault address, u64 rip, u64 rflags,
 *         u64 registers[16], memory bytes (same length as the case's), and for
 *         an SSE case the SSE block as it was after the code or at the fault.
 * Every case starts with xmm0..xmm15 zero and MXCSR 0x1f80 unless its SSE
 * block says otherwise (32-bit code sees xmm0..xmm7 only).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

#define MEMORY_BASE 0x10000000UL
#define MEMORY_SIZE 4096
#define CODE_BASE 0x20000000UL
#define CODE_PAGE_SIZE 4096
#define MAX_CODE_LENGTH 255
#define CASE_HEADER_SIZE 136
#define RESULT_HEADER_SIZE 168
#define SETTABLE_FLAGS 0xcd5UL /* CF PF AF ZF SF DF OF */
#define SSE_CASE 0x80
#define SSE_BLOCK_SIZE 264
#define DEFAULT_MXCSR 0x1f80

enum { STATUS_OK = 0, STATUS_FAULT = 1, STATUS_FAULT_OUTSIDE_CODE = 2, STATUS_TIMEOUT = 3 };

/* Layout shared with the trampolines below: regs at 0, rflags at 128,
   host rsp at 136, code address at 144, xmm at 160, mxcsr at 416, the
   harness's own MXCSR at 420. */
struct oracle_context {
  uint64_t regs[16];
  uint64_t rflags;
  uint64_t host_rsp;
  uint64_t code_address;
  uint64_t reserved;
  uint8_t xmm[256];
  uint32_t mxcsr;
  uint32_t host_mxcsr;
};
struct oracle_context oracle_context;
uint8_t oracle_scratch_stack[4096] __attribute__((aligned(16)));

void oracle_enter64(void);
void oracle_exit64(void);
void oracle_enter32(void);
void oracle_exit32(void);

__asm__(
  ".text\n"
  ".globl oracle_enter64\n"
  "oracle_enter64:\n"
  "  push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n"
  "  call oracle_load_sse\n"
  "  mov %rsp, oracle_context+136\n"
  "  mov $oracle_scratch_stack+4096, %rsp\n"
  "  pushq oracle_context+128\n"
  "  popfq\n"
  "  mov oracle_context+0, %rax\n"
  "  mov oracle_context+8, %rcx\n"
  "  mov oracle_context+16, %rdx\n"
  "  mov oracle_context+24, %rbx\n"
  "  mov oracle_context+40, %rbp\n"
  "  mov oracle_context+48, %rsi\n"
  "  mov oracle_context+56, %rdi\n"
  "  mov oracle_context+64, %r8\n"
  "  mov oracle_context+72, %r9\n"
  "  mov oracle_context+80, %r10\n"
  "  mov oracle_context+88, %r11\n"
  "  mov oracle_context+96, %r12\n"
  "  mov oracle_context+104, %r13\n"
  "  mov oracle_context+112, %r14\n"
  "  mov oracle_context+120, %r15\n"
  "  mov oracle_context+32, %rsp\n"
  "  jmp *oracle_context+144\n"
  ".globl oracle_exit64\n"
  "oracle_exit64:\n"
  "  mov %rax, oracle_context+0\n"
  "  mov %rcx, oracle_context+8\n"
  "  mov %rdx, oracle_context+16\n"
  "  mov %rbx, oracle_context+24\n"
  "  mov %rsp, oracle_context+32\n"
  "  mov %rbp, oracle_context+40\n"
  "  mov %rsi, oracle_context+48\n"
  "  mov %rdi, oracle_context+56\n"
  "  mov %r8, oracle_context+64\n"
  "  mov %r9, oracle_context+72\n"
  "  mov %r10, oracle_context+80\n"
  "  mov %r11, oracle_context+88\n"
  "  mov %r12, oracle_context+96\n"
  "  mov %r13, oracle_context+104\n"
  "  mov %r14, oracle_context+112\n"
  "  mov %r15, oracle_context+120\n"
  "  mov $oracle_scratch_stack+4096, %rsp\n"
  "  pushfq\n"
  "  popq oracle_context+128\n"
  "  call oracle_save_sse\n"
  "  mov oracle_context+136, %rsp\n"
  "  pushq $2\n"
  "  popfq\n"
  "  pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n"
  "  ret\n"
  ".globl oracle_enter32\n"
  "oracle_enter32:\n"
  "  push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n"
  "  call oracle_load_sse\n"
  "  mov %rsp, oracle_context+136\n"
  /* Compatibility mode uses DS/ES for data; a null selector would fault. */
  "  mov $0x2b, %eax\n"
  "  mov %eax, %ds\n"
  "  mov %eax, %es\n"
  "  pushq $0x23\n"
  "  pushq $oracle_compat_entry\n"
  "  lretq\n"
  ".code32\n"
  "oracle_compat_entry:\n"
  "  mov $oracle_scratch_stack+4096, %esp\n"
  "  pushl oracle_context+128\n"
  "  popfl\n"
  "  mov oracle_context+0, %eax\n"
  "  mov oracle_context+8, %ecx\n"
  "  mov oracle_context+16, %edx\n"
  "  mov oracle_context+24, %ebx\n"
  "  mov oracle_context+40, %ebp\n"
  "  mov oracle_context+48, %esi\n"
  "  mov oracle_context+56, %edi\n"
  "  mov oracle_context+32, %esp\n"
  "  jmp *oracle_context+144\n"
  ".globl oracle_exit32\n"
  "oracle_exit32:\n"
  "  mov %eax, oracle_context+0\n"
  "  mov %ecx, oracle_context+8\n"
  "  mov %edx, oracle_context+16\n"
  "  mov %ebx, oracle_context+24\n"
  "  mov %esp, oracle_context+32\n"
  "  mov %ebp, oracle_context+40\n"
  "  mov %esi, oracle_context+48\n"
  "  mov %edi, oracle_context+56\n"
  "  mov $oracle_scratch_stack+4096, %esp\n"
  "  pushfl\n"
  "  popl oracle_context+128\n"
  "  ljmp $0x33, $oracle_back64\n"
  ".code64\n"
  "oracle_back64:\n"
  "  mov $oracle_scratch_stack+4096, %rsp\n"
  "  call oracle_save_sse\n"
  "  mov oracle_context+136, %rsp\n"
  "  pushq $2\n"
  "  popfq\n"
  "  pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n"
  "  ret\n"
  /* XMM and MXCSR are loaded first thing and saved last: no code in between touches them. */
  "oracle_load_sse:\n"
  "  stmxcsr oracle_context+420\n"
  "  movdqu oracle_context+160, %xmm0\n"
  "  movdqu oracle_context+176, %xmm1\n"
  "  movdqu oracle_context+192, %xmm2\n"
  "  movdqu oracle_context+208, %xmm3\n"
  "  movdqu oracle_context+224, %xmm4\n"
  "  movdqu oracle_context+240, %xmm5\n"
  "  movdqu oracle_context+256, %xmm6\n"
  "  movdqu oracle_context+272, %xmm7\n"
  "  movdqu oracle_context+288, %xmm8\n"
  "  movdqu oracle_context+304, %xmm9\n"
  "  movdqu oracle_context+320, %xmm10\n"
  "  movdqu oracle_context+336, %xmm11\n"
  "  movdqu oracle_context+352, %xmm12\n"
  "  movdqu oracle_context+368, %xmm13\n"
  "  movdqu oracle_context+384, %xmm14\n"
  "  movdqu oracle_context+400, %xmm15\n"
  "  ldmxcsr oracle_context+416\n"
  "  ret\n"
  "oracle_save_sse:\n"
  "  movdqu %xmm0, oracle_context+160\n"
  "  movdqu %xmm1, oracle_context+176\n"
  "  movdqu %xmm2, oracle_context+192\n"
  "  movdqu %xmm3, oracle_context+208\n"
  "  movdqu %xmm4, oracle_context+224\n"
  "  movdqu %xmm5, oracle_context+240\n"
  "  movdqu %xmm6, oracle_context+256\n"
  "  movdqu %xmm7, oracle_context+272\n"
  "  movdqu %xmm8, oracle_context+288\n"
  "  movdqu %xmm9, oracle_context+304\n"
  "  movdqu %xmm10, oracle_context+320\n"
  "  movdqu %xmm11, oracle_context+336\n"
  "  movdqu %xmm12, oracle_context+352\n"
  "  movdqu %xmm13, oracle_context+368\n"
  "  movdqu %xmm14, oracle_context+384\n"
  "  movdqu %xmm15, oracle_context+400\n"
  "  stmxcsr oracle_context+416\n"
  "  ldmxcsr oracle_context+420\n"
  "  ret\n"
  ".globl oracle_reset_flags\n"
  "oracle_reset_flags:\n"
  "  pushq $2\n"
  "  popfq\n"
  "  ret\n");

/* Clears DF, AC and TF, which the case may have set: the C code needs them clear. */
void oracle_reset_flags(void);

struct fault_record {
  uint8_t status;
  uint8_t signal;
  uint8_t vector;
  uint32_t si_code;
  uint64_t error_code;
  uint64_t address;
  uint64_t rip;
  uint64_t rflags;
  uint64_t regs[16];
  uint8_t xmm[256];
  uint32_t mxcsr;
};

static sigjmp_buf fault_jump;
static volatile sig_atomic_t running;
static struct fault_record fault;

static const int gregs_order[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP,
                                    REG_RSI, REG_RDI, REG_R8,  REG_R9,  REG_R10, REG_R11,
                                    REG_R12, REG_R13, REG_R14, REG_R15};

static void on_signal(int signal_number, siginfo_t *info, void *context_pointer) {
  oracle_reset_flags();
  if (!running) {
    /* A timer that fires just after its case finished. */
    if (signal_number == SIGALRM) return;
    /* A fault in the harness itself: die with the signal so the caller sees it. */
    signal(signal_number, SIG_DFL);
    raise(signal_number);
    _exit(128 + signal_number);
  }
  running = 0;
  ucontext_t *context = context_pointer;
  greg_t *gregs = context->uc_mcontext.gregs;
  uint64_t rip = (uint64_t)gregs[REG_RIP];
  fault.signal = (uint8_t)signal_number;
  fault.si_code = (uint32_t)info->si_code;
  if (signal_number == SIGALRM) {
    fault.status = STATUS_TIMEOUT;
    fault.vector = 255;
  } else {
    fault.status = (rip >= CODE_BASE && rip < CODE_BASE + CODE_PAGE_SIZE) ? STATUS_FAULT
                                                                       : STATUS_FAULT_OUTSIDE_CODE;
    fault.vector = (uint8_t)gregs[REG_TRAPNO];
  }
  fault.error_code = (uint64_t)gregs[REG_ERR];
  fault.address = (uint64_t)(uintptr_t)info->si_addr;
  fault.rip = rip;
  fault.rflags = (uint64_t)gregs[REG_EFL];
  for (int index = 0; index < 16; index++) fault.regs[index] = (uint64_t)gregs[gregs_order[index]];
  /* The SSE state at the fault, from the FXSAVE image the kernel put in the signal frame. */
  if (context->uc_mcontext.fpregs != NULL) {
    fault.mxcsr = context->uc_mcontext.fpregs->mxcsr;
    memcpy(fault.xmm, context->uc_mcontext.fpregs->_xmm, sizeof fault.xmm);
  }
  siglongjmp(fault_jump, 1);
}

static int read_exact(uint8_t *into, size_t length) {
  size_t done = 0;
  while (done < length) {
    size_t got = fread(into + done, 1, length - done, stdin);
    if (got == 0) return done == 0 ? 0 : -1;
    done += got;
  }
  return 1;
}

static void write_exact(const uint8_t *from, size_t length) {
  while (length > 0) {
    ssize_t written = write(1, from, length);
    if (written < 0) {
      if (errno == EINTR) continue;
      _exit(4);
    }
    from += written;
    length -= (size_t)written;
  }
}

static uint64_t load64(const uint8_t *from) {
  uint64_t value;
  memcpy(&value, from, 8);
  return value;
}

static void store64(uint8_t *into, uint64_t value) { memcpy(into, &value, 8); }

static void fail(const char *message) {
  fprintf(stderr, "oracle harness: %s (errno %d: %s)\n", message, errno, strerror(errno));
  exit(3);
}

static void *map_fixed(uintptr_t address, int protection) {
  void *page = mmap((void *)address, 4096, protection,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (page != (void *)address) return NULL;
  return page;
}

int main(void) {
  uint8_t *memory = map_fixed(MEMORY_BASE, PROT_READ | PROT_WRITE);
  if (!memory) fail("cannot map the memory page at 0x10000000");
  uint8_t *code = map_fixed(CODE_BASE, PROT_READ | PROT_WRITE | PROT_EXEC);
  if (!code) fail("cannot map an executable page at 0x20000000");
  memset(code, 0xcc, CODE_PAGE_SIZE);

  static uint8_t alternate_stack[65536];
  stack_t stack = {.ss_sp = alternate_stack, .ss_size = sizeof alternate_stack, .ss_flags = 0};
  if (sigaltstack(&stack, NULL) != 0) fail("sigaltstack failed");
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = on_signal;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&action.sa_mask);
  const int signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGALRM};
  for (unsigned index = 0; index < sizeof signals / sizeof signals[0]; index++) {
    if (sigaction(signals[index], &action, NULL) != 0) fail("sigaction failed");
  }

  static uint8_t header[CASE_HEADER_SIZE];
  static uint8_t result[RESULT_HEADER_SIZE];
  static uint8_t case_code[MAX_CODE_LENGTH];
  static uint8_t sse_block[SSE_BLOCK_SIZE];
  size_t previous_code_length = 0;
  for (;;) {
    int status = read_exact(header, CASE_HEADER_SIZE);
    if (status == 0) break;
    if (status < 0) fail("truncated case header");
    unsigned bits = header[0] & ~SSE_CASE;
    int sse_case = (header[0] & SSE_CASE) != 0;
    unsigned code_length = header[1];
    unsigned memory_length = (unsigned)header[2] | ((unsigned)header[3] << 8);
    uint32_t rflags;
    memcpy(&rflags, header + 4, 4);
    if ((bits != 64 && bits != 32) || memory_length > MEMORY_SIZE) fail("malformed case");
    if (code_length > 0 && read_exact(case_code, code_length) != 1) fail("truncated code");
    memset(memory, 0, MEMORY_SIZE);
    if (memory_length > 0 && read_exact(memory, memory_length) != 1) fail("truncated memory");
    memset(sse_block, 0, sizeof sse_block);
    uint32_t default_mxcsr = DEFAULT_MXCSR;
    memcpy(sse_block + 256, &default_mxcsr, 4);
    if (sse_case && read_exact(sse_block, SSE_BLOCK_SIZE) != 1) fail("truncated SSE block");
    memcpy(oracle_context.xmm, sse_block, 256);
    memcpy(&oracle_context.mxcsr, sse_block + 256, 4);

    memset(code, 0xcc, previous_code_length + 5);
    memcpy(code, case_code, code_length);
    /* Fall through into the exit trampoline with a jmp rel32 (same encoding in both modes). */
    uintptr_t exit_address = bits == 64 ? (uintptr_t)oracle_exit64 : (uintptr_t)oracle_exit32;
    int32_t displacement = (int32_t)((int64_t)exit_address - (int64_t)(CODE_BASE + code_length + 5));
    code[code_length] = 0xe9;
    memcpy(code + code_length + 1, &displacement, 4);
    previous_code_length = code_length;

    for (int index = 0; index < 16; index++) {
      uint64_t value = load64(header + 8 + 8 * index);
      oracle_context.regs[index] = bits == 32 ? (value & 0xffffffffUL) : value;
    }
    oracle_context.rflags = (rflags & SETTABLE_FLAGS) | 0x202;
    oracle_context.code_address = CODE_BASE;

    struct itimerval timer = {.it_interval = {0, 0}, .it_value = {2, 0}};
    setitimer(ITIMER_REAL, &timer, NULL);
    memset(&fault, 0, sizeof fault);
    if (sigsetjmp(fault_jump, 0) == 0) {
      running = 1;
      if (bits == 64) oracle_enter64();
      else oracle_enter32();
      running = 0;
      fault.status = STATUS_OK;
      fault.rip = CODE_BASE + code_length;
      fault.rflags = oracle_context.rflags;
      memcpy(fault.regs, oracle_context.regs, sizeof fault.regs);
      memcpy(fault.xmm, oracle_context.xmm, sizeof fault.xmm);
      fault.mxcsr = oracle_context.mxcsr;
    }
    /* After a fault the C code runs with whatever MXCSR the signal handler left: make it the default. */
    __builtin_ia32_ldmxcsr(DEFAULT_MXCSR);
    struct itimerval stop = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &stop, NULL);

    result[0] = fault.status;
    result[1] = fault.signal;
    result[2] = fault.vector;
    result[3] = 0;
    memcpy(result + 4, &fault.si_code, 4);
    store64(result + 8, fault.error_code);
    store64(result + 16, fault.address);
    store64(result + 24, fault.rip);
    store64(result + 32, fault.rflags);
    for (int index = 0; index < 16; index++) {
      uint64_t value = fault.regs[index];
      store64(result + 40 + 8 * index, bits == 32 ? (value & 0xffffffffUL) : value);
    }
    write_exact(result, RESULT_HEADER_SIZE);
    write_exact(memory, memory_length);
    if (sse_case) {
      memcpy(sse_block, fault.xmm, 256);
      /* 32-bit code cannot reach xmm8..xmm15: report them as it left them, zero. */
      if (bits == 32) memset(sse_block + 128, 0, 128);
      memcpy(sse_block + 256, &fault.mxcsr, 4);
      memset(sse_block + 260, 0, 4);
      write_exact(sse_block, SSE_BLOCK_SIZE);
    }
  }
  return 0;
}
`;
