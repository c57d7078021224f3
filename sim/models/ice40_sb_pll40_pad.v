// A behavioural stand-in for the iCE40 SB_PLL40_PAD (Yosys has only a blackbox), for simulating
// a board's synthesised netlist (sim/netlist.py): the output follows the input pin, so the
// testbench clocks the pin at the core's own clock (the multiplication is the PLL's job and
// nextpnr's timing report checks it); LOCK rises after LOCK_CYCLES input cycles. Only the
// simple feedback path boards/pll.py uses (FEEDBACK_PATH "SIMPLE", GENCLK) is accepted.
module SB_PLL40_PAD (
    input PACKAGEPIN,
    output PLLOUTCORE,
    output PLLOUTGLOBAL,
    input EXTFEEDBACK,
    input [7:0] DYNAMICDELAY,
    output reg LOCK,
    input BYPASS,
    input RESETB,
    input LATCHINPUTVALUE,
    output SDO,
    input SDI,
    input SCLK
);
    parameter FEEDBACK_PATH = "SIMPLE";
    parameter DELAY_ADJUSTMENT_MODE_FEEDBACK = "FIXED";
    parameter DELAY_ADJUSTMENT_MODE_RELATIVE = "FIXED";
    parameter SHIFTREG_DIV_MODE = 1'b0;
    parameter FDA_FEEDBACK = 4'b0000;
    parameter FDA_RELATIVE = 4'b0000;
    parameter PLLOUT_SELECT = "GENCLK";
    parameter DIVR = 4'b0000;
    parameter DIVF = 7'b0000000;
    parameter DIVQ = 3'b000;
    parameter FILTER_RANGE = 3'b000;
    parameter ENABLE_ICEGATE = 1'b0;
    parameter TEST_MODE = 1'b0;
    parameter EXTERNAL_DIVIDE_FACTOR = 1;
    localparam LOCK_CYCLES = 16;

    assign PLLOUTCORE = PACKAGEPIN;
    assign PLLOUTGLOBAL = PACKAGEPIN;
    assign SDO = 1'b0;
    reg [7:0] count = 0;
    initial begin
        LOCK = 1'b0;
        if (FEEDBACK_PATH != "SIMPLE" || PLLOUT_SELECT != "GENCLK") begin
            $display("SB_PLL40_PAD model: only FEEDBACK_PATH SIMPLE and PLLOUT_SELECT GENCLK");
            $finish;
        end
    end
    always @(posedge PACKAGEPIN) begin
        if (count < LOCK_CYCLES)
            count <= count + 1;
        LOCK <= count == LOCK_CYCLES;
    end
endmodule
