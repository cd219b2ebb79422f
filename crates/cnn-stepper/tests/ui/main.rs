//! The window's tests, driven through egui_kittest: one test binary with a module per part of
//! the window, because each binary links all of egui and wgpu (seven of them filled a CI disk).

mod kittest;

mod app;
mod class_layout;
mod classify;
mod colour;
mod draw;
mod evaluation;
mod files;
mod help;
mod lesson;
mod lessons;
mod loops;
mod network;
mod network_app;
mod networks;
mod open_data;
mod playground;
mod tabs;
mod teaching_views;
mod views_any;
