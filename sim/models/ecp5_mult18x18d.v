// A behavioural model of the part of Lattice's ECP5 MULT18X18D that rtl/array.py uses, for
// simulating the array with its ECP5 multipliers (tests/test_array.py): A and B registered on
// CLK0 when REG_INPUTA_CLK / REG_INPUTB_CLK are "CLK0" (enabled by CE0, cleared by RST0), no
// pipeline or output register, P = A * B, signed as SIGNEDA and SIGNEDB say. Any other use
// stops the simulation. Yosys has only a blackbox of this primitive.
module MULT18X18D (
    input A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15, A16, A17,
    input B0, B1, B2, B3, B4, B5, B6, B7, B8, B9, B10, B11, B12, B13, B14, B15, B16, B17,
    input C0, C1, C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12, C13, C14, C15, C16, C17,
    input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
    input CLK0, CE0, RST0,
    output P0, P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13, P14, P15, P16, P17,
    output P18, P19, P20, P21, P22, P23, P24, P25, P26, P27, P28, P29, P30, P31, P32, P33, P34, P35
);
    parameter REG_INPUTA_CLK = "NONE";
    parameter REG_INPUTA_CE = "CE0";
    parameter REG_INPUTA_RST = "RST0";
    parameter REG_INPUTB_CLK = "NONE";
    parameter REG_INPUTB_CE = "CE0";
    parameter REG_INPUTB_RST = "RST0";
    parameter REG_PIPELINE_CLK = "NONE";
    parameter REG_OUTPUT_CLK = "NONE";
    parameter RESETMODE = "SYNC";
    parameter GSR = "DISABLED";
    parameter SOURCEB_MODE = "B_SHIFT";
    parameter MULT_BYPASS = "DISABLED";

    initial begin
        if (REG_PIPELINE_CLK != "NONE" || REG_OUTPUT_CLK != "NONE" || MULT_BYPASS != "DISABLED"
                || RESETMODE != "SYNC" || SOURCEB_MODE != "B_SHIFT") begin
            $display("MULT18X18D model: unsupported configuration");
            $finish;
        end
    end

    wire [17:0] a_in = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b_in = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
    reg [17:0] a_reg, b_reg;
    always @(posedge CLK0) begin
        if (RST0) begin
            a_reg <= 18'd0;
            b_reg <= 18'd0;
        end else if (CE0) begin
            a_reg <= a_in;
            b_reg <= b_in;
        end
    end
    wire [17:0] a = REG_INPUTA_CLK == "CLK0" ? a_reg : a_in;
    wire [17:0] b = REG_INPUTB_CLK == "CLK0" ? b_reg : b_in;
    wire signed [36:0] a_ext = SIGNEDA ? {{19{a[17]}}, a} : {19'd0, a};
    wire signed [36:0] b_ext = SIGNEDB ? {{19{b[17]}}, b} : {19'd0, b};
    wire signed [36:0] product = a_ext * b_ext;
    wire [35:0] p = product[35:0];
    assign P0 = p[0];
    assign P1 = p[1];
    assign P2 = p[2];
    assign P3 = p[3];
    assign P4 = p[4];
    assign P5 = p[5];
    assign P6 = p[6];
    assign P7 = p[7];
    assign P8 = p[8];
    assign P9 = p[9];
    assign P10 = p[10];
    assign P11 = p[11];
    assign P12 = p[12];
    assign P13 = p[13];
    assign P14 = p[14];
    assign P15 = p[15];
    assign P16 = p[16];
    assign P17 = p[17];
    assign P18 = p[18];
    assign P19 = p[19];
    assign P20 = p[20];
    assign P21 = p[21];
    assign P22 = p[22];
    assign P23 = p[23];
    assign P24 = p[24];
    assign P25 = p[25];
    assign P26 = p[26];
    assign P27 = p[27];
    assign P28 = p[28];
    assign P29 = p[29];
    assign P30 = p[30];
    assign P31 = p[31];
    assign P32 = p[32];
    assign P33 = p[33];
    assign P34 = p[34];
    assign P35 = p[35];
endmodule
