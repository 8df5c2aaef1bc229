"""Hand-written verifier programs (conformance asm syntax) and the kernel's verdicts on them.

Each case is (name, prog_type, source).  ``{hash}``, ``{array}``, ``{array1}``,
``{ringbuf}``, ``{progs}`` are replaced by map fds.  The expected decision is the
kernel's (the differential test asks the kernel; ``KERNEL_6_18`` pins what this
machine's 6.18 said, so the model test runs without root too).
"""
from __future__ import annotations

XDP, TC, SF = 6, 3, 1


def kernel_message(line: str) -> str:
    """The message part of a kernel error line.

    When the message follows a jump whose state suffix was never printed, the kernel writes it on
    the instruction's line (``2: (55) if r0 != 0x0 goto pc-2 infinite loop detected at insn 1``).
    """
    cut = line.find("infinite loop detected")
    return line[cut:] if cut > 0 else line

PKT = "ldxw %r2, [%r1]\nldxw %r3, [%r1+4]\n"          # r2 = data, r3 = data_end (XDP)
SKB_PKT = "ldxw %r2, [%r1+76]\nldxw %r3, [%r1+80]\n"  # __sk_buff data / data_end
KEY = "stw [%r10-4], 0\nmov %r2, %r10\nadd %r2, -4\n"

CASES: list[tuple[str, int, str]] = [
    # --- basics -----------------------------------------------------------------------------
    ("ret_const", XDP, "mov %r0, 2\nexit"),
    ("ret_uninit", XDP, "exit"),
    ("ret_r1_uninit_read", XDP, "mov %r0, %r2\nexit"),
    ("ret_large", XDP, "mov %r0, 100\nexit"),
    ("ret_ctx_ptr_priv", TC, "mov %r0, %r1\nexit"),
    ("unreachable", XDP, "mov %r0, 0\nexit\nmov %r0, 1\nexit"),
    ("jump_out_of_range", XDP, "ja +5\nmov %r0, 0\nexit"),
    ("div_imm_zero", XDP, "mov %r0, 1\ndiv %r0, 0\nexit"),
    ("div_reg_ok", XDP, "mov %r0, 1\nmov %r1, 0\ndiv %r0, %r1\nexit"),
    ("mod_reg_ok", XDP, "mov %r0, 7\nmov %r2, 3\nmod %r0, %r2\nexit"),
    ("last_not_exit", XDP, "mov %r0, 0"),
    ("lddw_const", XDP, "lddw %r0, 0x100000002\nexit"),
    ("infinite_loop", XDP, "mov %r0, 0\nl:\njeq %r0, 0, l\nexit"),
    ("infinite_loop_unknown", XDP, "call 7\nl:\nadd %r0, 1\njne %r0, 0, l\nexit"),
    ("loop_on_packet_bytes", XDP, PKT + "mov %r4, %r2\nadd %r4, 8\njgt %r4, %r3, out\nmov %r5, 0\nl:\n"
                                        "ldxb %r0, [%r2+0]\nadd %r5, 1\njlt %r5, 8, l\nout:\nmov %r0, 2\nexit"),
    ("bounded_loop", XDP, "mov %r0, 0\nl:\nadd %r0, 1\njlt %r0, 20, l\nmov %r0, 2\nexit"),
    ("bounded_loop_32", XDP, "mov32 %r0, 0\nl:\nadd32 %r0, 3\njlt32 %r0, 30, l\nexit"),
    # --- stack ------------------------------------------------------------------------------
    ("stack_write_read", XDP, "stdw [%r10-8], 7\nldxdw %r0, [%r10-8]\nexit"),
    ("stack_oob_write", XDP, "stdw [%r10-520], 1\nmov %r0, 0\nexit"),
    ("stack_oob_read", XDP, "ldxdw %r0, [%r10-520]\nmov %r0, 0\nexit"),
    ("stack_positive_off", XDP, "stdw [%r10+0], 1\nmov %r0, 0\nexit"),
    ("stack_misaligned", XDP, "stw [%r10-6], 1\nmov %r0, 0\nexit"),
    ("stack_uninit_read_priv", XDP, "ldxw %r0, [%r10-8]\nexit"),
    ("stack_spill_ctx_fill", XDP, "stxdw [%r10-8], %r1\nldxdw %r2, [%r10-8]\nldxw %r0, [%r2+12]\nexit"),
    ("stack_spill_ctx_partial_fill", XDP, "stxdw [%r10-8], %r1\nldxw %r2, [%r10-8]\nmov %r0, 0\nexit"),
    ("stack_spill_ctx_narrow", XDP, "stxw [%r10-8], %r1\nmov %r0, 0\nexit"),
    ("stack_sub_fp", XDP, "mov %r2, %r10\nsub %r2, 8\nmov %r0, 0\nexit"),
    ("stack_fp_plus_var", XDP, "call 7\nand %r0, 8\nmov %r2, %r10\nsub %r2, %r0\nmov %r0, 0\nexit"),
    ("stack_var_off_ok", XDP, "call 7\nand %r0, 8\nmov %r2, %r10\nadd %r2, -16\nadd %r2, %r0\n"
                              "stdw [%r2], 0\nmov %r0, 0\nexit"),
    ("stack_var_off_oob", XDP, "call 7\nand %r0, 16\nmov %r2, %r10\nadd %r2, -16\nadd %r2, %r0\n"
                               "stdw [%r2], 0\nmov %r0, 0\nexit"),
    ("stack_spill_scalar_bounds", XDP, PKT + "mov %r4, 6\nstxdw [%r10-8], %r4\nldxdw %r5, [%r10-8]\n"
                                       "mov %r6, %r2\nadd %r6, %r5\nadd %r6, 1\njgt %r6, %r3, out\n"
                                       "ldxb %r0, [%r2+6]\nout:\nmov %r0, 2\nexit"),
    ("stack_const_in_stack", XDP, "stw [%r10-8], 4\nldxw %r0, [%r10-8]\njeq %r0, 4, +1\nldxw %r0, [%r0]\n"
                                  "mov %r0, 0\nexit"),
    # --- ALU and pointers -------------------------------------------------------------------
    ("ptr_mul", XDP, "mov %r1, %r10\nmul %r1, 2\nmov %r0, 0\nexit"),
    ("ptr_and", XDP, "mov %r1, %r10\nand %r1, 2\nmov %r0, 0\nexit"),
    ("ptr_alu32", XDP, "mov %r1, %r10\nadd32 %r1, 2\nmov %r0, 0\nexit"),
    ("ptr_mov32_priv", XDP, "mov32 %r1, %r10\nmov %r0, 0\nexit"),
    ("ptr_sub_ptr", XDP, "mov %r1, %r10\nsub %r1, %r10\nmov %r0, %r1\nexit"),
    ("scalar_sub_ptr", XDP, "mov %r1, 8\nsub %r1, %r10\nmov %r0, 0\nexit"),
    ("ptr_add_ptr", XDP, "mov %r1, %r10\nadd %r1, %r10\nmov %r0, 0\nexit"),
    ("pkt_end_arith", XDP, PKT + "add %r3, 1\nmov %r0, 0\nexit"),
    ("pkt_end_deref", XDP, PKT + "ldxb %r0, [%r3]\nexit"),
    ("scalar_deref", XDP, "mov %r0, 4\nldxw %r0, [%r0]\nexit"),
    ("div_unknown_result", XDP, "mov %r0, 4\ndiv %r0, 2\njeq %r0, 2, +1\nldxw %r0, [%r0]\nmov %r0, 0\nexit"),
    ("neg_tracked", XDP, "mov %r0, 4\nneg %r0\njeq %r0, -4, +1\nldxw %r0, [%r0]\nmov %r0, 0\nexit"),
    ("be16_tracked", XDP, "mov %r0, 4\nbe16 %r0\njeq %r0, 0x400, +1\nldxw %r0, [%r0]\nmov %r0, 0\nexit"),
    ("dead_branch_const", XDP, "mov %r1, 5\njgt %r1, 4, +1\nldxw %r0, [%r1]\nmov %r0, 0\nexit"),
    ("dead_branch_range", XDP, "call 7\nand %r0, 7\njgt %r0, 7, +1\nja +1\nldxw %r0, [%r0]\nmov %r0, 0\nexit"),
    ("live_branch_range", XDP, "call 7\nand %r0, 15\njgt %r0, 7, +1\nja +1\nldxw %r0, [%r0]\nmov %r0, 0\nexit"),
    ("jset_dead", XDP, "call 7\nand %r0, 6\njset %r0, 1, +1\nja +1\nldxw %r0, [%r0]\nmov %r0, 0\nexit"),
    ("jmp32_dead", XDP, "lddw %r1, 0x100000005\njgt32 %r1, 5, +1\nja +1\nldxw %r0, [%r1]\nmov %r0, 0\nexit"),
    ("rsh_bounds", XDP, "call 7\nrsh %r0, 60\njlt %r0, 16, +1\nldxw %r0, [%r0]\nmov %r0, 0\nexit"),
    ("lsh_bounds", XDP, "call 7\nand %r0, 3\nlsh %r0, 2\njle %r0, 12, +1\nldxw %r0, [%r0]\nmov %r0, 0\nexit"),
    ("arsh_bounds", XDP, "mov %r0, -16\narsh %r0, 2\njeq %r0, -4, +1\nldxw %r0, [%r0]\nmov %r0, 0\nexit"),
    ("signed_cmp_refine", XDP, "call 7\njsgt %r0, 10, out\njslt %r0, 0, out\njsle %r0, 10, +1\nldxw %r0, [%r0]\n"
                               "out:\nmov %r0, 0\nexit"),
    ("linked_regs", XDP, PKT + "call 7\nmov %r4, %r0\nand %r4, 0xff\nmov %r5, %r4\njgt %r5, 10, out\n"
                         "ldxw %r2, [%r6]\nout:\nmov %r0, 0\nexit"),
    ("movsx_const", XDP, "mov %r1, 0xff\nmovsx864 %r0, %r1\njeq %r0, -1, +1\nldxw %r0, [%r0]\nmov %r0, 0\nexit"),
    # --- packet -----------------------------------------------------------------------------
    ("pkt_no_check", XDP, PKT + "ldxb %r0, [%r2]\nmov %r0, 2\nexit"),
    ("pkt_checked", XDP, PKT + "mov %r4, %r2\nadd %r4, 14\njgt %r4, %r3, out\nldxb %r0, [%r2+13]\nout:\n"
                               "mov %r0, 2\nexit"),
    ("pkt_checked_off_by_one", XDP, PKT + "mov %r4, %r2\nadd %r4, 14\njgt %r4, %r3, out\nldxb %r0, [%r2+14]\n"
                                          "out:\nmov %r0, 2\nexit"),
    ("pkt_jlt", XDP, PKT + "mov %r4, %r2\nadd %r4, 8\njlt %r4, %r3, +2\nmov %r0, 1\nexit\nldxdw %r0, [%r2]\n"
                           "mov %r0, 2\nexit"),
    ("pkt_jge_rev", XDP, PKT + "mov %r4, %r2\nadd %r4, 4\njge %r3, %r4, +2\nmov %r0, 1\nexit\nldxw %r0, [%r2]\n"
                               "mov %r0, 2\nexit"),
    ("pkt_wrong_branch", XDP, PKT + "mov %r4, %r2\nadd %r4, 14\njgt %r4, %r3, +1\nexit\nldxb %r0, [%r2]\n"
                                    "mov %r0, 2\nexit"),
    ("pkt_write", XDP, PKT + "mov %r4, %r2\nadd %r4, 4\njgt %r4, %r3, out\nstw [%r2], 1\nout:\nmov %r0, 2\nexit"),
    ("pkt_var_off_unchecked", XDP, PKT + "call 7\nand %r0, 0xf\nmov %r4, %r2\nadd %r4, %r0\nldxb %r0, [%r4]\n"
                                         "mov %r0, 2\nexit"),
    ("pkt_var_off_checked", XDP, PKT + "mov %r6, %r2\nmov %r7, %r3\ncall 7\nand %r0, 0xf\nmov %r4, %r6\n"
                                       "add %r4, %r0\nmov %r5, %r4\nadd %r5, 1\njgt %r5, %r7, out\n"
                                       "ldxb %r0, [%r4]\nout:\nmov %r0, 2\nexit"),
    ("pkt_after_adjust_head", XDP, PKT + "mov %r4, %r2\nadd %r4, 4\njgt %r4, %r3, out\nmov %r6, %r2\n"
                                         "mov %r2, 0\ncall 44\nldxb %r0, [%r6]\nout:\nmov %r0, 2\nexit"),
    ("pkt_meta_check", XDP, "ldxw %r2, [%r1+8]\nldxw %r3, [%r1]\nmov %r4, %r2\nadd %r4, 4\njgt %r4, %r3, out\n"
                            "ldxw %r0, [%r2]\nout:\nmov %r0, 2\nexit"),
    ("tc_pkt_checked", TC, SKB_PKT + "mov %r4, %r2\nadd %r4, 14\njgt %r4, %r3, out\nldxh %r0, [%r2+12]\nout:\n"
                                     "mov %r0, 0\nexit"),
    ("sf_no_pkt_ptr", SF, "ldxw %r2, [%r1+76]\nmov %r0, 0\nexit"),
    ("pkt_cmp_jmp32", XDP, PKT + "mov %r4, %r2\nadd %r4, 14\njgt32 %r4, %r3, out\nldxb %r0, [%r2]\nout:\n"
                                 "mov %r0, 2\nexit"),
    # --- ctx --------------------------------------------------------------------------------
    ("xdp_ctx_8byte", XDP, "ldxdw %r0, [%r1]\nexit"),
    ("xdp_ctx_egress", XDP, "ldxw %r0, [%r1+20]\nexit"),
    ("xdp_ctx_misaligned", XDP, "ldxw %r0, [%r1+2]\nexit"),
    ("xdp_ctx_narrow", XDP, "ldxh %r0, [%r1+12]\nexit"),
    ("xdp_ctx_write", XDP, "stw [%r1], 1\nmov %r0, 0\nexit"),
    ("xdp_ctx_stx", XDP, "mov %r2, 1\nstxw [%r1+12], %r2\nmov %r0, 0\nexit"),
    ("xdp_ctx_modified", XDP, "add %r1, 4\nldxw %r0, [%r1]\nexit"),
    ("xdp_ctx_rxq", XDP, "ldxw %r0, [%r1+16]\nexit"),
    ("skb_len_narrow", TC, "ldxb %r0, [%r1]\nexit"),
    ("skb_mark_write_tc", TC, "mov %r2, 7\nstxw [%r1+8], %r2\nmov %r0, 0\nexit"),
    ("skb_mark_write_sf", SF, "mov %r2, 7\nstxw [%r1+8], %r2\nmov %r0, 0\nexit"),
    ("skb_cb_write_sf", SF, "mov %r2, 7\nstxw [%r1+48], %r2\nmov %r0, 0\nexit"),
    ("skb_len_write", TC, "mov %r2, 7\nstxw [%r1], %r2\nmov %r0, 0\nexit"),
    ("skb_family_tc", TC, "ldxw %r0, [%r1+88]\nexit"),
    ("skb_tstamp_4", TC, "ldxw %r0, [%r1+152]\nexit"),
    ("skb_tstamp_8", TC, "ldxdw %r0, [%r1+152]\nexit"),
    ("skb_oob", TC, "ldxw %r0, [%r1+192]\nexit"),
    ("skb_st_ctx", TC, "stw [%r1+8], 1\nmov %r0, 0\nexit"),
    # --- maps and helpers -------------------------------------------------------------------
    ("map_lookup_no_null_check", XDP, KEY + "lddw %r1, {hash}, 1\ncall 1\nldxdw %r0, [%r0]\nmov %r0, 0\nexit"),
    ("map_lookup_null_check", XDP, KEY + "lddw %r1, {hash}, 1\ncall 1\njeq %r0, 0, +1\nldxdw %r1, [%r0]\n"
                                         "mov %r0, 0\nexit"),
    ("map_lookup_jne", XDP, KEY + "lddw %r1, {hash}, 1\ncall 1\njne %r0, 0, +2\nmov %r0, 0\nexit\n"
                                  "ldxdw %r0, [%r0]\nexit"),
    ("map_null_propagation", XDP, KEY + "lddw %r1, {hash}, 1\ncall 1\nmov %r6, %r0\njeq %r0, 0, +1\n"
                                        "ldxdw %r1, [%r6]\nmov %r0, 0\nexit"),
    ("map_value_oob", XDP, KEY + "lddw %r1, {hash}, 1\ncall 1\njeq %r0, 0, +1\nldxw %r1, [%r0+8]\n"
                                 "mov %r0, 0\nexit"),
    ("map_value_neg", XDP, KEY + "lddw %r1, {hash}, 1\ncall 1\njeq %r0, 0, +1\nldxw %r1, [%r0-4]\n"
                                 "mov %r0, 0\nexit"),
    ("map_value_var_ok", XDP, KEY + "lddw %r1, {array}, 1\ncall 1\njeq %r0, 0, out\nmov %r6, %r0\ncall 7\n"
                                    "and %r0, 12\nadd %r6, %r0\nldxw %r0, [%r6]\nout:\nmov %r0, 0\nexit"),
    ("map_value_var_oob", XDP, KEY + "lddw %r1, {array}, 1\ncall 1\njeq %r0, 0, out\nmov %r6, %r0\ncall 7\n"
                                     "and %r0, 16\nadd %r6, %r0\nldxw %r0, [%r6]\nout:\nmov %r0, 0\nexit"),
    ("map_value_unbounded", XDP, KEY + "lddw %r1, {array}, 1\ncall 1\njeq %r0, 0, out\nmov %r6, %r0\ncall 7\n"
                                       "add %r6, %r0\nldxw %r0, [%r6]\nout:\nmov %r0, 0\nexit"),
    ("array_const_key_not_null", XDP, KEY + "lddw %r1, {array}, 1\ncall 1\nldxw %r0, [%r0+12]\nexit"),
    ("array_spilled_key_not_null", XDP, "mov %r1, 3\nstxw [%r10-8], %r1\nmov %r2, %r10\nadd %r2, -8\n"
                                        "lddw %r1, {array}, 1\ncall 1\nldxw %r0, [%r0]\nexit"),
    ("array_key_out_of_range", XDP, "mov %r1, 4\nstxw [%r10-8], %r1\nmov %r2, %r10\nadd %r2, -8\n"
                                    "lddw %r1, {array}, 1\ncall 1\nldxw %r0, [%r0]\nexit"),
    ("array_unknown_key", XDP, "call 7\nstxw [%r10-8], %r0\nmov %r2, %r10\nadd %r2, -8\n"
                               "lddw %r1, {array}, 1\ncall 1\nldxw %r0, [%r0]\nexit"),
    ("map_or_null_arith", XDP, KEY + "lddw %r1, {hash}, 1\ncall 1\nadd %r0, 4\nmov %r0, 0\nexit"),
    ("map_key_uninit_priv", XDP, "mov %r2, %r10\nadd %r2, -4\nlddw %r1, {hash}, 1\ncall 1\nmov %r0, 0\nexit"),
    ("map_key_oob", XDP, "mov %r2, %r10\nadd %r2, -2\nlddw %r1, {hash}, 1\ncall 1\nmov %r0, 0\nexit"),
    ("map_key_scalar", XDP, "mov %r2, 0\nlddw %r1, {hash}, 1\ncall 1\nmov %r0, 0\nexit"),
    ("map_arg_scalar", XDP, KEY + "mov %r1, 0\ncall 1\nmov %r0, 0\nexit"),
    ("map_update_ok", XDP, KEY + "stdw [%r10-16], 1\nmov %r3, %r10\nadd %r3, -16\nmov %r4, 0\n"
                                 "lddw %r1, {hash}, 1\ncall 2\nmov %r0, 0\nexit"),
    ("map_update_value_short", XDP, KEY + "stw [%r10-8], 1\nmov %r3, %r10\nadd %r3, -4\nmov %r4, 0\n"
                                          "lddw %r1, {array}, 1\ncall 2\nmov %r0, 0\nexit"),
    ("map_update_r4_uninit", XDP, KEY + "mov %r3, %r10\nadd %r3, -16\nlddw %r1, {hash}, 1\ncall 2\nmov %r0, 0\n"
                                        "exit"),
    ("map_delete", XDP, KEY + "lddw %r1, {hash}, 1\ncall 3\nexit"),
    ("map_value_pseudo", XDP, "lddw %r1, {array1}, 2\nldxdw %r0, [%r1]\nexit"),
    ("map_value_pseudo_oob", XDP, "lddw %r1, {array1}, 2\nldxdw %r0, [%r1+4]\nexit"),
    ("map_wrong_type_lookup_ringbuf", XDP, KEY + "lddw %r1, {ringbuf}, 1\ncall 1\nmov %r0, 0\nexit"),
    ("helper_clobbers_r1", XDP, "call 5\nmov %r0, %r1\nexit"),
    ("helper_unknown_id", XDP, "call 250\nmov %r0, 0\nexit"),
    ("helper_not_for_type", XDP, "call 9\nmov %r0, 0\nexit"),
    ("helper_tc_only_sf", SF, "mov %r2, 0\nmov %r3, 0\nmov %r4, 0\nmov %r5, 0\ncall 10\nmov %r0, 0\nexit"),
    ("printk_ok", XDP, "stdw [%r10-8], 0x41\nmov %r1, %r10\nadd %r1, -8\nmov %r2, 8\ncall 6\nmov %r0, 0\nexit"),
    ("printk_zero_size", XDP, "mov %r1, %r10\nadd %r1, -8\nmov %r2, 0\ncall 6\nmov %r0, 0\nexit"),
    ("printk_too_big", XDP, "mov %r1, %r10\nadd %r1, -8\nmov %r2, 16\ncall 6\nmov %r0, 0\nexit"),
    ("printk_scalar_buf", XDP, "mov %r1, 0\nmov %r2, 8\ncall 6\nmov %r0, 0\nexit"),
    ("printk_size_ptr", XDP, "mov %r1, %r10\nadd %r1, -8\nmov %r2, %r1\ncall 6\nmov %r0, 0\nexit"),
    ("printk_size_unknown", XDP, "call 5\nmov %r2, %r0\nmov %r1, %r10\nadd %r1, -8\ncall 6\nmov %r0, 0\nexit"),
    ("printk_size_bounded", XDP, "call 5\nmov %r2, %r0\nand %r2, 7\nadd %r2, 1\nmov %r1, %r10\nadd %r1, -8\n"
                                 "call 6\nmov %r0, 0\nexit"),
    ("skb_load_bytes_ok", TC, "mov %r2, 0\nmov %r3, %r10\nadd %r3, -8\nmov %r4, 8\ncall 26\nldxdw %r0, [%r10-8]\n"
                              "mov %r0, 0\nexit"),
    ("skb_load_bytes_ctx_mod", TC, "add %r1, 4\nmov %r2, 0\nmov %r3, %r10\nadd %r3, -8\nmov %r4, 8\ncall 26\n"
                                   "mov %r0, 0\nexit"),
    ("csum_diff_null", XDP, "mov %r1, 0\nmov %r2, 0\nmov %r3, 0\nmov %r4, 0\nmov %r5, 0\ncall 28\nexit"),
    ("ringbuf_reserve_leak", XDP, "lddw %r1, {ringbuf}, 1\nmov %r2, 8\nmov %r3, 0\ncall 131\nmov %r0, 0\nexit"),
    ("ringbuf_reserve_submit", XDP, "lddw %r1, {ringbuf}, 1\nmov %r2, 8\nmov %r3, 0\ncall 131\njeq %r0, 0, out\n"
                                    "stdw [%r0], 1\nmov %r1, %r0\nmov %r2, 0\ncall 132\nout:\nmov %r0, 0\nexit"),
    ("ringbuf_mem_oob", XDP, "lddw %r1, {ringbuf}, 1\nmov %r2, 8\nmov %r3, 0\ncall 131\njeq %r0, 0, out\n"
                             "stdw [%r0+8], 1\nmov %r1, %r0\nmov %r2, 0\ncall 132\nout:\nmov %r0, 0\nexit"),
    ("ringbuf_use_after_submit", XDP, "lddw %r1, {ringbuf}, 1\nmov %r2, 8\nmov %r3, 0\ncall 131\n"
                                      "jeq %r0, 0, out\nmov %r6, %r0\nmov %r1, %r0\nmov %r2, 0\ncall 132\n"
                                      "stdw [%r6], 1\nout:\nmov %r0, 0\nexit"),
    ("tail_call_ok", XDP, "lddw %r2, {progs}, 1\nmov %r3, 0\ncall 12\nmov %r0, 2\nexit"),
    ("tail_call_wrong_map", XDP, "lddw %r2, {hash}, 1\nmov %r3, 0\ncall 12\nmov %r0, 2\nexit"),
    ("atomic_stack", XDP, "stdw [%r10-8], 0\nmov %r1, 1\nlock add [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit"),
    ("atomic_fetch_stack", XDP, "stdw [%r10-8], 0\nmov %r1, 1\nlock fetch add [%r10-8], %r1\nmov %r0, %r1\nexit"),
    ("atomic_ctx", XDP, "mov %r2, 1\nlock add32 [%r1], %r2\nmov %r0, 0\nexit"),
    ("atomic_map_value", XDP, KEY + "lddw %r1, {hash}, 1\ncall 1\njeq %r0, 0, out\nmov %r1, 1\n"
                                    "lock add [%r0], %r1\nout:\nmov %r0, 0\nexit"),
    # --- bpf-to-bpf calls -------------------------------------------------------------------
    ("call_local", XDP, "mov %r1, 3\ncall local f\nexit\nf:\nmov %r0, %r1\nexit"),
    ("call_local_ret_uninit", XDP, "call local f\nexit\nf:\nexit"),
    ("call_local_r1_clobbered", XDP, "mov %r1, 3\ncall local f\nmov %r0, %r1\nexit\nf:\nmov %r0, 0\nexit"),
    ("call_local_r6_kept", XDP, "mov %r6, 3\ncall local f\nmov %r0, %r6\nexit\nf:\nmov %r0, 0\nexit"),
    ("call_local_stack_ptr", XDP, "stdw [%r10-8], 5\nmov %r1, %r10\nadd %r1, -8\ncall local f\nexit\nf:\n"
                                  "ldxdw %r0, [%r1]\nexit"),
    ("call_local_combined_stack", XDP, "stdw [%r10-512], 0\ncall local f\nmov %r0, 0\nexit\nf:\n"
                                       "stdw [%r10-8], 0\nmov %r0, 0\nexit"),
    ("call_local_jump_across", XDP, "call local f\nja f\nexit\nf:\nmov %r0, 0\nexit"),
    ("call_local_pkt_ok", XDP, PKT + "mov %r4, %r2\nadd %r4, 1\njgt %r4, %r3, out\nmov %r1, %r2\ncall local f\n"
                                     "out:\nmov %r0, 2\nexit\nf:\nldxb %r0, [%r1]\nexit"),
    ("call_depth_8", XDP, "call local f1\nexit\nf1:\ncall local f2\nexit\nf2:\ncall local f3\nexit\nf3:\ncall local f4\nexit\nf4:\ncall local f5\nexit\nf5:\ncall local f6\nexit\nf6:\ncall local f7\nexit\nf7:\nmov %r0, 0\nexit"),
    ("call_depth_9", XDP, "call local f1\nexit\nf1:\ncall local f2\nexit\nf2:\ncall local f3\nexit\nf3:\ncall local f4\nexit\nf4:\ncall local f5\nexit\nf5:\ncall local f6\nexit\nf6:\ncall local f7\nexit\nf7:\ncall local f8\nexit\nf8:\nmov %r0, 0\nexit"),
    ("call_local_return_stack_ptr", XDP, "call local f\nldxdw %r0, [%r0]\nexit\nf:\nmov %r0, %r10\nadd %r0, -8\nexit"),
    ("tc_store_bytes_invalidates_pkt", TC, SKB_PKT + "mov %r4, %r2\nadd %r4, 4\njgt %r4, %r3, out\nmov %r6, %r2\n"
                                              "stw [%r10-8], 1\nmov %r2, 0\nmov %r3, %r10\nadd %r3, -8\n"
                                              "mov %r4, 4\nmov %r5, 0\ncall 9\nldxw %r0, [%r6]\nout:\n"
                                              "mov %r0, 0\nexit"),
    ("tc_store_bytes_ok", TC, "stw [%r10-8], 1\nmov %r2, 0\nmov %r3, %r10\nadd %r3, -8\nmov %r4, 4\n"
                              "mov %r5, 0\ncall 9\nmov %r0, 0\nexit"),
    ("tc_l3_csum_ok", TC, "mov %r2, 24\nmov %r3, 0\nmov %r4, 1\nmov %r5, 2\ncall 10\nmov %r0, 0\nexit"),
    ("tc_l3_csum_scalar_ctx", TC, "mov %r1, 0\nmov %r2, 24\nmov %r3, 0\nmov %r4, 1\nmov %r5, 2\ncall 10\n"
                                  "mov %r0, 0\nexit"),
    ("xdp_adjust_tail_ok", XDP, "mov %r2, -4\ncall 65\nmov %r0, 2\nexit"),
    ("xdp_redirect", XDP, "mov %r1, 1\nmov %r2, 0\ncall 23\nexit"),
    ("callee_invalidates_caller_pkt", XDP, PKT + "mov %r4, %r2\nadd %r4, 4\njgt %r4, %r3, out\nmov %r6, %r2\n"
                                                 "call local f\nldxw %r0, [%r6]\nout:\nmov %r0, 2\nexit\nf:\n"
                                                 "mov %r2, 0\ncall 44\nmov %r0, 0\nexit"),
    ("sf_ld_ind", SF, "mov %r6, %r1\nmov %r7, 2\nldindh %r7, 10\nexit"),
    ("sdiv_smod_reg", XDP, "mov %r0, -7\nmov %r1, 2\nsdiv %r0, %r1\nsmod %r0, %r1\nexit"),
    ("movsx32", XDP, "mov %r1, 0x80\nmovsx832 %r0, %r1\nexit"),
    ("atomic_xchg_stack", XDP, "stdw [%r10-8], 3\nmov %r1, 9\nlock xchg [%r10-8], %r1\nmov %r0, %r1\nexit"),
    ("atomic_cmpxchg_stack", XDP, "stdw [%r10-8], 3\nmov %r0, 3\nmov %r1, 9\nlock cmpxchg [%r10-8], %r1\n"
                                  "exit"),
    ("atomic_cmpxchg_no_r0", XDP, "stdw [%r10-8], 3\nmov %r1, 9\nlock cmpxchg [%r10-8], %r1\nmov %r0, 0\nexit"),
    ("atomic_uninit_stack", XDP, "mov %r1, 1\nlock add [%r10-8], %r1\nmov %r0, 0\nexit"),
    ("atomic_spilled_ptr", XDP, "stxdw [%r10-8], %r1\nmov %r1, 1\nlock add [%r10-8], %r1\nmov %r0, 0\nexit"),
    ("pkt_var_then_const_check", XDP, PKT + "mov %r6, %r2\nmov %r7, %r3\ncall 7\nand %r0, 0xff\nmov %r4, %r6\n"
                                            "add %r4, %r0\nadd %r4, 4\njgt %r4, %r7, out\nldxw %r0, [%r4-4]\n"
                                            "out:\nmov %r0, 2\nexit"),
    ("stack_narrow_spill_fill", XDP, "call 7\nand %r0, 7\nstxw [%r10-8], %r0\nldxw %r1, [%r10-8]\n"
                                     "jle %r1, 7, +1\nldxw %r0, [%r0]\nmov %r0, 0\nexit"),
    ("stack_zero_read_const", XDP, "stw [%r10-4], 0\nldxw %r1, [%r10-4]\njeq %r1, 0, +1\nldxw %r0, [%r0]\n"
                                   "mov %r0, 0\nexit"),
    ("ld_abs_xdp", XDP, "mov %r6, %r1\nldabsb 12\nexit"),
    ("ld_abs_tc", TC, "mov %r6, %r1\nldabsh 12\nexit"),
]


# Generated from this machine's kernel (Linux 6.18, root): name -> (accepted, errno, error line).
# Regenerate with the differential test's helpers if cases change.
KERNEL_6_18 = {
    'ret_const': (True, 0, ''),
    'ret_uninit': (False, 13, 'R0 !read_ok'),
    'ret_r1_uninit_read': (False, 13, 'R2 !read_ok'),
    'ret_large': (True, 0, ''),
    'ret_ctx_ptr_priv': (True, 0, ''),
    'unreachable': (False, 22, 'unreachable insn 2'),
    'jump_out_of_range': (False, 22, 'jump out of range from insn 0 to 6'),
    'div_imm_zero': (False, 22, 'div by zero'),
    'div_reg_ok': (True, 0, ''),
    'mod_reg_ok': (True, 0, ''),
    'last_not_exit': (False, 22, 'last insn is not an exit or jmp'),
    'lddw_const': (True, 0, ''),
    'infinite_loop': (False, 22, 'infinite loop detected at insn 1'),
    'infinite_loop_unknown': (False, 22, '2: (55) if r0 != 0x0 goto pc-2 infinite loop detected at insn 1'),
    'loop_on_packet_bytes': (True, 0, ''),
    'bounded_loop': (True, 0, ''),
    'bounded_loop_32': (True, 0, ''),
    'stack_write_read': (True, 0, ''),
    'stack_oob_write': (False, 13, 'invalid write to stack R10 off=-520 size=8'),
    'stack_oob_read': (False, 13, 'invalid read from stack R10 off=-520 size=8'),
    'stack_positive_off': (False, 13, 'invalid write to stack R10 off=0 size=8'),
    'stack_misaligned': (False, 13, 'misaligned stack access off 0+0+-6 size 4'),
    'stack_uninit_read_priv': (True, 0, ''),
    'stack_spill_ctx_fill': (True, 0, ''),
    'stack_spill_ctx_partial_fill': (False, 13, 'invalid size of register fill'),
    'stack_spill_ctx_narrow': (False, 13, 'invalid size of register spill'),
    'stack_sub_fp': (False, 13, 'R2 subtraction from stack pointer prohibited'),
    'stack_fp_plus_var': (False, 13, 'R2 subtraction from stack pointer prohibited'),
    'stack_var_off_ok': (True, 0, ''),
    'stack_var_off_oob': (False, 22, 'invalid variable-offset write to stack R2 var_off=(0x0; 0x10) off=-16 size=8'),
    'stack_spill_scalar_bounds': (True, 0, ''),
    'stack_const_in_stack': (True, 0, ''),
    'ptr_mul': (False, 13, 'R1 pointer arithmetic with *= operator prohibited'),
    'ptr_and': (False, 13, 'R1 bitwise operator &= on pointer prohibited'),
    'ptr_alu32': (False, 13, 'R1 32-bit pointer arithmetic prohibited'),
    'ptr_mov32_priv': (True, 0, ''),
    'ptr_sub_ptr': (True, 0, ''),
    'scalar_sub_ptr': (False, 13, 'R1 tried to subtract pointer from scalar'),
    'ptr_add_ptr': (False, 13, 'R1 pointer += pointer prohibited'),
    'pkt_end_arith': (False, 13, 'R3 pointer arithmetic on pkt_end prohibited'),
    'pkt_end_deref': (False, 13, "R3 invalid mem access 'pkt_end'"),
    'scalar_deref': (False, 13, "R0 invalid mem access 'scalar'"),
    'div_unknown_result': (False, 13, "R0 invalid mem access 'scalar'"),
    'neg_tracked': (True, 0, ''),
    'be16_tracked': (True, 0, ''),
    'dead_branch_const': (True, 0, ''),
    'dead_branch_range': (True, 0, ''),
    'live_branch_range': (False, 13, "R0 invalid mem access 'scalar'"),
    'jset_dead': (True, 0, ''),
    'jmp32_dead': (True, 0, ''),
    'rsh_bounds': (True, 0, ''),
    'lsh_bounds': (True, 0, ''),
    'arsh_bounds': (True, 0, ''),
    'signed_cmp_refine': (True, 0, ''),
    'linked_regs': (False, 13, 'R6 !read_ok'),
    'movsx_const': (True, 0, ''),
    'pkt_no_check': (False, 13, 'R2 offset is outside of the packet'),
    'pkt_checked': (True, 0, ''),
    'pkt_checked_off_by_one': (False, 13, 'R2 offset is outside of the packet'),
    'pkt_jlt': (True, 0, ''),
    'pkt_jge_rev': (True, 0, ''),
    'pkt_wrong_branch': (False, 13, 'R0 !read_ok'),
    'pkt_write': (True, 0, ''),
    'pkt_var_off_unchecked': (False, 13, 'R2 !read_ok'),
    'pkt_var_off_checked': (True, 0, ''),
    'pkt_after_adjust_head': (False, 13, "R6 invalid mem access 'scalar'"),
    'pkt_meta_check': (True, 0, ''),
    'tc_pkt_checked': (True, 0, ''),
    'sf_no_pkt_ptr': (False, 13, 'invalid bpf_context access off=76 size=4'),
    'pkt_cmp_jmp32': (False, 13, 'R2 offset is outside of the packet'),
    'xdp_ctx_8byte': (False, 13, 'invalid bpf_context access off=0 size=8'),
    'xdp_ctx_egress': (False, 13, 'invalid bpf_context access off=20 size=4'),
    'xdp_ctx_misaligned': (False, 13, 'invalid bpf_context access off=2 size=4'),
    'xdp_ctx_narrow': (False, 13, 'invalid bpf_context access off=12 size=2'),
    'xdp_ctx_write': (False, 13, 'invalid bpf_context access off=0 size=4'),
    'xdp_ctx_stx': (False, 13, 'invalid bpf_context access off=12 size=4'),
    'xdp_ctx_modified': (False, 13, 'dereference of modified ctx ptr R1 off=4 disallowed'),
    'xdp_ctx_rxq': (True, 0, ''),
    'skb_len_narrow': (True, 0, ''),
    'skb_mark_write_tc': (True, 0, ''),
    'skb_mark_write_sf': (False, 13, 'invalid bpf_context access off=8 size=4'),
    'skb_cb_write_sf': (True, 0, ''),
    'skb_len_write': (False, 13, 'invalid bpf_context access off=0 size=4'),
    'skb_family_tc': (False, 13, 'invalid bpf_context access off=88 size=4'),
    'skb_tstamp_4': (False, 13, 'invalid bpf_context access off=152 size=4'),
    'skb_tstamp_8': (True, 0, ''),
    'skb_oob': (False, 13, 'invalid bpf_context access off=192 size=4'),
    'skb_st_ctx': (True, 0, ''),
    'map_lookup_no_null_check': (False, 13, "R0 invalid mem access 'map_value_or_null'"),
    'map_lookup_null_check': (True, 0, ''),
    'map_lookup_jne': (True, 0, ''),
    'map_null_propagation': (True, 0, ''),
    'map_value_oob': (False, 13, 'R0 min value is outside of the allowed memory range'),
    'map_value_neg': (False, 13, 'R0 min value is outside of the allowed memory range'),
    'map_value_var_ok': (True, 0, ''),
    'map_value_var_oob': (False, 13, 'R6 max value is outside of the allowed memory range'),
    'map_value_unbounded': (False, 22, 'math between map_value pointer and register with unbounded min value is not allowed'),
    'array_const_key_not_null': (True, 0, ''),
    'array_spilled_key_not_null': (True, 0, ''),
    'array_key_out_of_range': (False, 13, "R0 invalid mem access 'map_value_or_null'"),
    'array_unknown_key': (False, 13, "R0 invalid mem access 'map_value_or_null'"),
    'map_or_null_arith': (False, 13, 'R0 pointer arithmetic on map_value_or_null prohibited, null-check it first'),
    'map_key_uninit_priv': (True, 0, ''),
    'map_key_oob': (False, 22, 'invalid read from stack R2 off=-2 size=4'),
    'map_key_scalar': (False, 13, 'R2 type=scalar expected=fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_'),
    'map_arg_scalar': (False, 13, 'R1 type=scalar expected=map_ptr'),
    'map_update_ok': (True, 0, ''),
    'map_update_value_short': (False, 22, 'invalid read from stack R3 off=-4 size=16'),
    'map_update_r4_uninit': (False, 13, 'R4 !read_ok'),
    'map_delete': (True, 0, ''),
    'map_value_pseudo': (True, 0, ''),
    'map_value_pseudo_oob': (False, 13, 'R1 min value is outside of the allowed memory range'),
    'map_wrong_type_lookup_ringbuf': (False, 13, 'invalid zero-sized read'),
    'helper_clobbers_r1': (False, 13, 'R1 !read_ok'),
    'helper_unknown_id': (False, 22, 'invalid func unknown#250'),
    'helper_not_for_type': (False, 22, 'program of this type cannot use helper bpf_skb_store_bytes#9'),
    'helper_tc_only_sf': (False, 22, 'program of this type cannot use helper bpf_l3_csum_replace#10'),
    'printk_ok': (True, 0, ''),
    'printk_zero_size': (False, 13, 'R2 invalid zero-sized read: u64=[0,0]'),
    'printk_too_big': (False, 22, 'invalid read from stack R1 off=-8 size=16'),
    'printk_scalar_buf': (False, 13, 'R1 type=scalar expected=fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_'),
    'printk_size_ptr': (False, 13, 'R2 type=fp expected=scalar'),
    'printk_size_unknown': (False, 13, "R2 min value is negative, either use unsigned or 'var &= const'"),
    'printk_size_bounded': (True, 0, ''),
    'skb_load_bytes_ok': (True, 0, ''),
    'skb_load_bytes_ctx_mod': (False, 13, 'dereference of modified ctx ptr R1 off=4 disallowed'),
    'csum_diff_null': (True, 0, ''),
    'ringbuf_reserve_leak': (False, 22, 'BPF_EXIT instruction in main prog would lead to reference leak'),
    'ringbuf_reserve_submit': (True, 0, ''),
    'ringbuf_mem_oob': (False, 13, 'R0 min value is outside of the allowed memory range'),
    'ringbuf_use_after_submit': (False, 13, "R6 invalid mem access 'scalar'"),
    'tail_call_ok': (True, 0, ''),
    'tail_call_wrong_map': (False, 22, 'expected prog array map for tail call'),
    'atomic_stack': (True, 0, ''),
    'atomic_fetch_stack': (True, 0, ''),
    'atomic_ctx': (False, 13, 'BPF_ATOMIC stores into R1 ctx is not allowed'),
    'atomic_map_value': (True, 0, ''),
    'call_local': (True, 0, ''),
    'call_local_ret_uninit': (False, 13, 'R0 !read_ok'),
    'call_local_r1_clobbered': (False, 13, 'R1 !read_ok'),
    'call_local_r6_kept': (True, 0, ''),
    'call_local_stack_ptr': (True, 0, ''),
    'call_local_combined_stack': (False, 13, 'combined stack size of 2 calls is 528. Too large'),
    'call_local_jump_across': (False, 22, 'jump out of range from insn 1 to 3'),
    'call_local_pkt_ok': (True, 0, ''),
    'call_depth_8': (True, 0, ''),
    'call_depth_9': (False, 7, 'the call stack of 9 frames is too deep'),
    'call_local_return_stack_ptr': (False, 22, 'cannot return stack pointer to the caller'),
    'tc_store_bytes_invalidates_pkt': (False, 13, "R6 invalid mem access 'scalar'"),
    'tc_store_bytes_ok': (True, 0, ''),
    'tc_l3_csum_ok': (True, 0, ''),
    'tc_l3_csum_scalar_ctx': (False, 13, 'R1 type=scalar expected=ctx'),
    'xdp_adjust_tail_ok': (True, 0, ''),
    'xdp_redirect': (True, 0, ''),
    'callee_invalidates_caller_pkt': (False, 13, "R6 invalid mem access 'scalar'"),
    'sf_ld_ind': (True, 0, ''),
    'sdiv_smod_reg': (True, 0, ''),
    'movsx32': (True, 0, ''),
    'atomic_xchg_stack': (True, 0, ''),
    'atomic_cmpxchg_stack': (True, 0, ''),
    'atomic_cmpxchg_no_r0': (False, 13, 'R0 !read_ok'),
    'atomic_uninit_stack': (True, 0, ''),
    'atomic_spilled_ptr': (True, 0, ''),
    'pkt_var_then_const_check': (True, 0, ''),
    'stack_narrow_spill_fill': (True, 0, ''),
    'stack_zero_read_const': (True, 0, ''),
    'ld_abs_xdp': (False, 22, 'BPF_LD_[ABS|IND] instructions not allowed for this program type'),
    'ld_abs_tc': (True, 0, ''),
}
