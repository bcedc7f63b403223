/*
 * The C program the host oracle compiles with gcc. Each 40-byte input record
 * is: operation u32, control u32 (x87 control word or MXCSR), operand A 16
 * bytes, operand B 16 bytes. Each 48-byte output record is: result 32 bytes
 * (x87: first result at 0, FXTRACT's second at 16; SSE: bits at 0), x87
 * status word u32, MXCSR u32, RFLAGS u32, spare u32.
 */
export const ORACLE_C_SOURCE = String.raw`
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>

/* An unmasked SSE exception raises #XM (SIGFPE): the handler records MXCSR and jumps back. */
static sigjmp_buf recovery;
static volatile uint32_t trapped_mxcsr;
static void on_fpe(int signal, siginfo_t *info, void *context) {
  (void)signal; (void)info;
  ucontext_t *uc = (ucontext_t *)context;
  trapped_mxcsr = uc->uc_mcontext.fpregs->mxcsr;
  uc->uc_mcontext.fpregs->mxcsr = 0x1f80;
  siglongjmp(recovery, 1);
}

typedef struct { uint32_t op, control; uint8_t a[16], b[16]; } In;
typedef struct { uint8_t r[32]; uint32_t status, mxcsr, rflags, spare; } Out;

static void x87(const In *in, Out *out) {
  uint16_t cw = (uint16_t)in->control, sw = 0;
  uint8_t r0[16], r1[16];
  int32_t i32 = 0; int16_t i16 = 0; int64_t i64 = 0; uint32_t f32 = 0; uint64_t f64 = 0;
  memset(r0, 0, 16); memset(r1, 0, 16);
  __asm__ volatile("fninit\n\tfldcw %0" :: "m"(cw));
  switch (in->op) {
  case 1: __asm__ volatile("fldt %2\n\tfldt %1\n\tfadd %%st(1), %%st\n\tfnstsw %0\n\tfnclex\n\tfstpt %3\n\tfstp %%st(0)" : "=m"(sw) : "m"(*in->a), "m"(*in->b), "m"(*r0)); break;
  case 2: __asm__ volatile("fldt %2\n\tfldt %1\n\tfsub %%st(1), %%st\n\tfnstsw %0\n\tfnclex\n\tfstpt %3\n\tfstp %%st(0)" : "=m"(sw) : "m"(*in->a), "m"(*in->b), "m"(*r0)); break;
  case 3: __asm__ volatile("fldt %2\n\tfldt %1\n\tfmul %%st(1), %%st\n\tfnstsw %0\n\tfnclex\n\tfstpt %3\n\tfstp %%st(0)" : "=m"(sw) : "m"(*in->a), "m"(*in->b), "m"(*r0)); break;
  case 4: __asm__ volatile("fldt %2\n\tfldt %1\n\tfdiv %%st(1), %%st\n\tfnstsw %0\n\tfnclex\n\tfstpt %3\n\tfstp %%st(0)" : "=m"(sw) : "m"(*in->a), "m"(*in->b), "m"(*r0)); break;
  case 5: __asm__ volatile("fldt %1\n\tfsqrt\n\tfnstsw %0\n\tfnclex\n\tfstpt %2" : "=m"(sw) : "m"(*in->a), "m"(*r0)); break;
  case 6: __asm__ volatile("flds %1\n\tfnstsw %0\n\tfnclex\n\tfstpt %2" : "=m"(sw) : "m"(*in->a), "m"(*r0)); break;
  case 7: __asm__ volatile("fldl %1\n\tfnstsw %0\n\tfnclex\n\tfstpt %2" : "=m"(sw) : "m"(*in->a), "m"(*r0)); break;
  case 8: __asm__ volatile("fldt %1\n\tfstps %2\n\tfnstsw %0\n\tfnclex" : "=m"(sw) : "m"(*in->a), "m"(f32)); memcpy(r0, &f32, 4); break;
  case 9: __asm__ volatile("fldt %1\n\tfstpl %2\n\tfnstsw %0\n\tfnclex" : "=m"(sw) : "m"(*in->a), "m"(f64)); memcpy(r0, &f64, 8); break;
  case 10: __asm__ volatile("filds %1\n\tfnstsw %0\n\tfnclex\n\tfstpt %2" : "=m"(sw) : "m"(*in->a), "m"(*r0)); break;
  case 11: __asm__ volatile("fildl %1\n\tfnstsw %0\n\tfnclex\n\tfstpt %2" : "=m"(sw) : "m"(*in->a), "m"(*r0)); break;
  case 12: __asm__ volatile("fildll %1\n\tfnstsw %0\n\tfnclex\n\tfstpt %2" : "=m"(sw) : "m"(*in->a), "m"(*r0)); break;
  case 13: __asm__ volatile("fldt %1\n\tfistps %2\n\tfnstsw %0\n\tfnclex" : "=m"(sw) : "m"(*in->a), "m"(i16)); memcpy(r0, &i16, 2); break;
  case 14: __asm__ volatile("fldt %1\n\tfistpl %2\n\tfnstsw %0\n\tfnclex" : "=m"(sw) : "m"(*in->a), "m"(i32)); memcpy(r0, &i32, 4); break;
  case 15: __asm__ volatile("fldt %1\n\tfistpll %2\n\tfnstsw %0\n\tfnclex" : "=m"(sw) : "m"(*in->a), "m"(i64)); memcpy(r0, &i64, 8); break;
  case 16: __asm__ volatile("fldt %1\n\tfisttpll %2\n\tfnstsw %0\n\tfnclex" : "=m"(sw) : "m"(*in->a), "m"(i64)); memcpy(r0, &i64, 8); break;
  case 17: __asm__ volatile("fldt %1\n\tfldt %2\n\tfcom %%st(1)\n\tfnstsw %0\n\tfnclex\n\tfstp %%st(0)\n\tfstp %%st(0)" : "=m"(sw) : "m"(*in->b), "m"(*in->a)); break;
  case 18: __asm__ volatile("fldt %1\n\tfldt %2\n\tfucom %%st(1)\n\tfnstsw %0\n\tfnclex\n\tfstp %%st(0)\n\tfstp %%st(0)" : "=m"(sw) : "m"(*in->b), "m"(*in->a)); break;
  case 19: __asm__ volatile("fldt %1\n\tfxam\n\tfnstsw %0\n\tfnclex\n\tfstp %%st(0)" : "=m"(sw) : "m"(*in->a)); break;
  case 20: __asm__ volatile("fldt %1\n\tfrndint\n\tfnstsw %0\n\tfnclex\n\tfstpt %2" : "=m"(sw) : "m"(*in->a), "m"(*r0)); break;
  case 21: __asm__ volatile("fldt %2\n\tfldt %1\n\tfprem\n\tfnstsw %0\n\tfnclex\n\tfstpt %3\n\tfstp %%st(0)" : "=m"(sw) : "m"(*in->a), "m"(*in->b), "m"(*r0)); break;
  case 22: __asm__ volatile("fldt %2\n\tfldt %1\n\tfprem1\n\tfnstsw %0\n\tfnclex\n\tfstpt %3\n\tfstp %%st(0)" : "=m"(sw) : "m"(*in->a), "m"(*in->b), "m"(*r0)); break;
  case 23: __asm__ volatile("fldt %2\n\tfldt %1\n\tfscale\n\tfnstsw %0\n\tfnclex\n\tfstpt %3\n\tfstp %%st(0)" : "=m"(sw) : "m"(*in->a), "m"(*in->b), "m"(*r0)); break;
  case 25: __asm__ volatile("fbld %1\n\tfnstsw %0\n\tfnclex\n\tfstpt %2" : "=m"(sw) : "m"(*in->a), "m"(*r0)); break;
  case 26: __asm__ volatile("fldt %1\n\tfbstp %2\n\tfnstsw %0\n\tfnclex" : "=m"(sw) : "m"(*in->a), "m"(*r0)); break;
  case 24: __asm__ volatile("fldt %1\n\tfxtract\n\tfnstsw %0\n\tfnclex\n\tfstpt %2\n\tfstpt %3" : "=m"(sw) : "m"(*in->a), "m"(*r0), "m"(*r1)); break;
  }
  memcpy(out->r, r0, 16); memcpy(out->r + 16, r1, 16);
  out->status = sw;
}

#define SSE_BINARY(instruction, mov) \
  __asm__ volatile("ldmxcsr %2\n\t" mov " %3, %%xmm0\n\t" mov " %4, %%xmm1\n\t" instruction " %%xmm1, %%xmm0\n\tstmxcsr %1\n\t" mov " %%xmm0, %0" \
    : "=m"(*out->r), "=m"(out->mxcsr) : "m"(mx), "m"(*in->a), "m"(*in->b) : "xmm0", "xmm1")
#define SSE_TO_INT(instruction, mov, reg) \
  __asm__ volatile("ldmxcsr %2\n\t" mov " %3, %%xmm0\n\t" instruction " %%xmm0, %%" reg "ax\n\tstmxcsr %1\n\tmov %%" reg "ax, %0" \
    : "=m"(*out->r), "=m"(out->mxcsr) : "m"(mx), "m"(*in->a) : "rax", "xmm0")
#define SSE_FROM_INT(instruction, size, reg) \
  __asm__ volatile("ldmxcsr %2\n\tmov %3, %%" reg "ax\n\txorps %%xmm0, %%xmm0\n\t" instruction " %%" reg "ax, %%xmm0\n\tstmxcsr %1\n\tmovsd %%xmm0, %0" \
    : "=m"(*out->r), "=m"(out->mxcsr) : "m"(mx), "m"(*(size *)in->a) : "rax", "xmm0")
#define SSE_COMPARE(instruction, mov) \
  __asm__ volatile("ldmxcsr %2\n\t" mov " %3, %%xmm0\n\t" mov " %4, %%xmm1\n\t" instruction " %%xmm1, %%xmm0\n\tpushfq\n\tpopq %%rax\n\tmov %%eax, %0\n\tstmxcsr %1" \
    : "=m"(out->rflags), "=m"(out->mxcsr) : "m"(mx), "m"(*in->a), "m"(*in->b) : "rax", "xmm0", "xmm1", "cc")

static void sse(const In *in, Out *out) {
  uint32_t mx = in->control;
  if (sigsetjmp(recovery, 1)) {
    uint32_t clean = 0x1F80;
    __asm__ volatile("ldmxcsr %0" :: "m"(clean));
    out->mxcsr = trapped_mxcsr;
    out->spare = 1;
    return;
  }
  switch (in->op) {
  case 64: SSE_BINARY("addss", "movss"); break;
  case 65: SSE_BINARY("subss", "movss"); break;
  case 66: SSE_BINARY("mulss", "movss"); break;
  case 67: SSE_BINARY("divss", "movss"); break;
  case 68: SSE_BINARY("sqrtss", "movss"); break;
  case 69: SSE_BINARY("minss", "movss"); break;
  case 70: SSE_BINARY("maxss", "movss"); break;
  case 72: SSE_BINARY("addsd", "movsd"); break;
  case 73: SSE_BINARY("subsd", "movsd"); break;
  case 74: SSE_BINARY("mulsd", "movsd"); break;
  case 75: SSE_BINARY("divsd", "movsd"); break;
  case 76: SSE_BINARY("sqrtsd", "movsd"); break;
  case 77: SSE_BINARY("minsd", "movsd"); break;
  case 78: SSE_BINARY("maxsd", "movsd"); break;
  case 80: SSE_BINARY("cvtss2sd", "movsd"); break;
  case 81: SSE_BINARY("cvtsd2ss", "movsd"); break;
  case 82: SSE_TO_INT("cvtss2si", "movss", "e"); break;
  case 83: SSE_TO_INT("cvttss2si", "movss", "e"); break;
  case 84: SSE_TO_INT("cvtss2si", "movss", "r"); break;
  case 85: SSE_TO_INT("cvttss2si", "movss", "r"); break;
  case 86: SSE_TO_INT("cvtsd2si", "movsd", "e"); break;
  case 87: SSE_TO_INT("cvttsd2si", "movsd", "e"); break;
  case 88: SSE_TO_INT("cvtsd2si", "movsd", "r"); break;
  case 89: SSE_TO_INT("cvttsd2si", "movsd", "r"); break;
  case 90: SSE_FROM_INT("cvtsi2ssl", uint32_t, "e"); break;
  case 91: SSE_FROM_INT("cvtsi2ssq", uint64_t, "r"); break;
  case 92: SSE_FROM_INT("cvtsi2sdl", uint32_t, "e"); break;
  case 93: SSE_FROM_INT("cvtsi2sdq", uint64_t, "r"); break;
  case 94: SSE_COMPARE("comiss", "movss"); break;
  case 95: SSE_COMPARE("ucomiss", "movss"); break;
  case 96: SSE_COMPARE("comisd", "movsd"); break;
  case 97: SSE_COMPARE("ucomisd", "movsd"); break;
  case 100: case 101: case 102: case 103: case 104: case 105: case 106: case 107: {
    static const char *unused = 0; (void)unused;
    switch (in->op - 100) {
    case 0: SSE_BINARY("cmpeqss", "movss"); break;
    case 1: SSE_BINARY("cmpltss", "movss"); break;
    case 2: SSE_BINARY("cmpless", "movss"); break;
    case 3: SSE_BINARY("cmpunordss", "movss"); break;
    case 4: SSE_BINARY("cmpneqss", "movss"); break;
    case 5: SSE_BINARY("cmpnltss", "movss"); break;
    case 6: SSE_BINARY("cmpnless", "movss"); break;
    case 7: SSE_BINARY("cmpordss", "movss"); break;
    }
    break;
  }
  case 108: case 109: case 110: case 111: case 112: case 113: case 114: case 115:
    switch (in->op - 108) {
    case 0: SSE_BINARY("cmpeqsd", "movsd"); break;
    case 1: SSE_BINARY("cmpltsd", "movsd"); break;
    case 2: SSE_BINARY("cmplesd", "movsd"); break;
    case 3: SSE_BINARY("cmpunordsd", "movsd"); break;
    case 4: SSE_BINARY("cmpneqsd", "movsd"); break;
    case 5: SSE_BINARY("cmpnltsd", "movsd"); break;
    case 6: SSE_BINARY("cmpnlesd", "movsd"); break;
    case 7: SSE_BINARY("cmpordsd", "movsd"); break;
    }
    break;
  }
  uint32_t clean = 0x1F80;
  __asm__ volatile("ldmxcsr %0" :: "m"(clean));
}

int main(void) {
  In in; Out out;
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = on_fpe;
  action.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigaction(SIGFPE, &action, 0);
  while (fread(&in, sizeof in, 1, stdin) == 1) {
    memset(&out, 0, sizeof out);
    if (in.op < 64) x87(&in, &out); else sse(&in, &out);
    fwrite(&out, sizeof out, 1, stdout);
  }
  return 0;
}
`;
