//go:build !purego

#include "textflag.h"

// func radix4AVX2(re, im, tw *float64, groups, s int)
//
// One radix-4 stage of rfftPower.power (span s, s a multiple of 4) over
// groups groups of 4s points, four butterflies (k..k+3) per iteration in
// 256-bit registers; the arithmetic is the scalar loop's, with fused
// multiply-adds in the complex multiplications. tw holds the stage's
// twiddles in blocks of 4 butterflies: w1r[4] w1i[4] w2r[4] w2i[4].
TEXT ·radix4AVX2(SB), NOSPLIT, $0-40
	MOVQ re+0(FP), AX
	MOVQ im+8(FP), SI
	MOVQ tw+16(FP), R12
	MOVQ groups+24(FP), DX
	MOVQ s+32(FP), R9
	MOVQ R9, R8
	SHLQ $3, R8             // s8 = s*8 bytes
	LEAQ (R8)(R8*2), R13    // 3*s8: from the end of a group's first quarter to the next group
	LEAQ (AX)(R8*1), BX     // re + s
	LEAQ (SI)(R8*1), DI     // im + s

group:
	MOVQ R12, R11
	MOVQ R9, CX

inner:
	VMOVUPD 64(R11), Y0     // w2r
	VMOVUPD 96(R11), Y1     // w2i
	VMOVUPD (BX), Y2        // x1r
	VMOVUPD (DI), Y3        // x1i
	VMULPD  Y3, Y1, Y4
	VFMSUB231PD Y2, Y0, Y4  // t1r = w2r*x1r - w2i*x1i
	VMULPD  Y2, Y1, Y5
	VFMADD231PD Y3, Y0, Y5  // t1i = w2r*x1i + w2i*x1r
	VMOVUPD (BX)(R8*2), Y2  // x3r
	VMOVUPD (DI)(R8*2), Y3  // x3i
	VMULPD  Y3, Y1, Y6
	VFMSUB231PD Y2, Y0, Y6  // t3r
	VMULPD  Y2, Y1, Y7
	VFMADD231PD Y3, Y0, Y7  // t3i
	VMOVUPD (AX), Y0        // x0r
	VMOVUPD (SI), Y1        // x0i
	VADDPD  Y4, Y0, Y8      // a0r = x0r + t1r
	VADDPD  Y5, Y1, Y9      // a0i
	VSUBPD  Y4, Y0, Y10     // a1r = x0r - t1r
	VSUBPD  Y5, Y1, Y11     // a1i
	VMOVUPD (AX)(R8*2), Y0  // x2r
	VMOVUPD (SI)(R8*2), Y1  // x2i
	VADDPD  Y6, Y0, Y2      // a2r = x2r + t3r
	VADDPD  Y7, Y1, Y3      // a2i
	VSUBPD  Y6, Y0, Y4      // a3r = x2r - t3r
	VSUBPD  Y7, Y1, Y5      // a3i
	VMOVUPD (R11), Y12      // w1r
	VMOVUPD 32(R11), Y13    // w1i
	VMULPD  Y3, Y13, Y6
	VFMSUB231PD Y2, Y12, Y6 // u2r = w1r*a2r - w1i*a2i
	VMULPD  Y2, Y13, Y7
	VFMADD231PD Y3, Y12, Y7 // u2i = w1r*a2i + w1i*a2r
	VMULPD  Y5, Y13, Y0
	VFMSUB231PD Y4, Y12, Y0 // vr = w1r*a3r - w1i*a3i
	VMULPD  Y4, Y13, Y1
	VFMADD231PD Y5, Y12, Y1 // vi = w1r*a3i + w1i*a3r
	VADDPD  Y6, Y8, Y2
	VMOVUPD Y2, (AX)        // re[k]    = a0r + u2r
	VADDPD  Y7, Y9, Y3
	VMOVUPD Y3, (SI)        // im[k]    = a0i + u2i
	VSUBPD  Y6, Y8, Y2
	VMOVUPD Y2, (AX)(R8*2)  // re[k+2s] = a0r - u2r
	VSUBPD  Y7, Y9, Y3
	VMOVUPD Y3, (SI)(R8*2)  // im[k+2s] = a0i - u2i
	VADDPD  Y1, Y10, Y2
	VMOVUPD Y2, (BX)        // re[k+s]  = a1r + vi
	VSUBPD  Y0, Y11, Y3
	VMOVUPD Y3, (DI)        // im[k+s]  = a1i - vr
	VSUBPD  Y1, Y10, Y2
	VMOVUPD Y2, (BX)(R8*2)  // re[k+3s] = a1r - vi
	VADDPD  Y0, Y11, Y3
	VMOVUPD Y3, (DI)(R8*2)  // im[k+3s] = a1i + vr
	ADDQ $32, AX
	ADDQ $32, BX
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $128, R11
	SUBQ $4, CX
	JNZ  inner

	ADDQ R13, AX
	ADDQ R13, BX
	ADDQ R13, SI
	ADDQ R13, DI
	DECQ DX
	JNZ  group
	VZEROUPPER
	RET
